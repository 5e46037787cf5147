package mapping

import (
	"errors"

	"github.com/intakehq/intake/pkg/objects"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// ModelOf describes a pkg/objects object as a data model for Compile: its
// keys and its (system) attributes with their types. It is for callers that
// do not yet receive the run's model (RunRequest.model / Chunk.model).
func ModelOf(obj *objects.Object) *intakev1.DataObject {
	if obj == nil {
		return nil
	}
	m := &intakev1.DataObject{
		Name:  "objects/" + obj.Name,
		Type:  obj.Type,
		Keys:  append([]string(nil), obj.Keys...),
		Table: objects.Schema + "." + obj.Name,
	}
	for _, a := range obj.Attributes {
		m.Attributes = append(m.Attributes, &intakev1.Attribute{
			Name:        m.Name + "/attributes/" + a.Name,
			AttributeId: a.Name,
			Type:        a.Type,
			System:      true,
			Key:         obj.IsKey(a.Name),
		})
	}
	return m
}

// CompileObject is Compile against a pkg/objects object (see ModelOf).
//
// Deprecated: transitional, for callers that do not have the run's model
// yet; use Compile with Chunk.model.
func CompileObject(obj *objects.Object, spec *intakev1.MappingSpec, header []string) (*Plan, error) {
	if obj == nil {
		return nil, errors.New("mapping: compile: no object")
	}
	return Compile(ModelOf(obj), spec, header)
}
