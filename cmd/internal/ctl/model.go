package ctl

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/intakehq/intake/cmd/internal/command"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// AttributeType is the lowercase name of an attribute type: "foreign-key".
func AttributeType(t intakev1.AttributeType) string {
	n, ok := intakev1.AttributeType_name[int32(t)]
	if !ok || t == intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED {
		return "-"
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(n, "ATTRIBUTE_TYPE_")), "_", "-")
}

// attributeTypes lists the types a custom attribute may have, for help
// and error messages.
const attributeTypes = "text, number, currency, date, timestamp, boolean or foreign-key"

// ParseAttributeType reads "text", "number", "currency", "date",
// "timestamp", "boolean", "foreign-key" (or the enum name).
func ParseAttributeType(s string) (intakev1.AttributeType, error) {
	n := strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(strings.TrimSpace(s)))
	n = strings.TrimPrefix(n, "ATTRIBUTE_TYPE_")
	if v, ok := intakev1.AttributeType_value["ATTRIBUTE_TYPE_"+n]; ok && v != 0 {
		return intakev1.AttributeType(v), nil
	}
	return 0, fmt.Errorf("%q is not an attribute type: want %s", s, attributeTypes)
}

func (c *cli) listObjects(ctx context.Context) ([]*intakev1.DataObject, error) {
	resp, err := c.model.ListObjects(ctx, &intakev1.ListObjectsRequest{})
	if err != nil {
		return nil, c.apiError("list objects", err)
	}
	return resp.GetObjects(), nil
}

// resolveObject finds the object s names ("accounts", "objects/accounts",
// "usage-aggregations") and returns its resource name.
func (c *cli) resolveObject(ctx context.Context, s string) (string, error) {
	objs, err := c.listObjects(ctx)
	if err != nil {
		return "", err
	}
	t, terr := ParseObject(s)
	var names []string
	for _, o := range objs {
		if o.GetName() == s || o.GetName() == "objects/"+s || terr == nil && o.GetType() == t {
			return o.GetName(), nil
		}
		names = append(names, strings.TrimPrefix(o.GetName(), "objects/"))
	}
	return "", command.Usagef("%q is not an object: want one of %s (intakectl object list)", s, strings.Join(names, ", "))
}

func (c *cli) objectList(ctx context.Context, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	objs, err := c.listObjects(ctx)
	if err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON(&intakev1.ListObjectsResponse{Objects: objs})
	}
	tw := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tDISPLAY NAME\tKEYS\tATTRIBUTES\tTABLE\tNOTES")
	for _, o := range objs {
		var custom int
		for _, a := range o.GetAttributes() {
			if !a.GetSystem() {
				custom++
			}
		}
		var notes []string
		if o.GetAppendOnly() {
			notes = append(notes, "append-only")
		}
		if len(o.GetRequiredAny()) > 0 {
			notes = append(notes, "needs "+strings.Join(o.GetRequiredAny(), " or ")+" mapped")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d (%d custom)\t%s\t%s\n", o.GetName(), dash(o.GetDisplayName()), strings.Join(o.GetKeys(), ", "),
			len(o.GetAttributes()), custom, dash(o.GetTable()), strings.Join(notes, "; "))
	}
	return tw.Flush()
}

func (c *cli) attributeList(ctx context.Context, args []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	parent, err := c.resolveObject(ctx, args[0])
	if err != nil {
		return err
	}
	resp, err := c.model.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: parent})
	if err != nil {
		return c.apiError("list the attributes of "+parent, err)
	}
	if c.output == "json" {
		return c.printJSON(resp)
	}
	tw := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTRIBUTE\tTYPE\tKEY\tKIND\tREFERENCES\tDISPLAY NAME")
	for _, a := range resp.GetAttributes() {
		kind := "custom"
		if a.GetSystem() {
			kind = "system"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.GetAttributeId(), AttributeType(a.GetType()), yesNo(a.GetKey()), kind,
			dash(a.GetReferences()), dash(a.GetDisplayName()))
	}
	return tw.Flush()
}

func (c *cli) attributeCreate(ctx context.Context, args []string) error {
	if c.id == "" {
		return command.Usagef("--id is required: the attribute id, e.g. --id segment")
	}
	if c.attrType == "" {
		return command.Usagef("--type is required: %s", attributeTypes)
	}
	typ, err := ParseAttributeType(c.attrType)
	if err != nil {
		return command.Usagef("--type: %v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	parent, err := c.resolveObject(ctx, args[0])
	if err != nil {
		return err
	}
	refs := c.references
	if refs != "" {
		if refs, err = c.resolveObject(ctx, refs); err != nil {
			return fmt.Errorf("--references: %w", err)
		}
	}
	attr, err := c.model.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: parent, Attribute: &intakev1.Attribute{
		AttributeId: c.id, Type: typ, References: refs, DisplayName: c.displayName, Description: c.description,
	}})
	if err != nil {
		return c.apiError("create attribute "+c.id+" of "+parent, err)
	}
	if c.output == "json" {
		return c.printJSON(attr)
	}
	fmt.Fprintf(c.sys.Stdout, "created %s (%s)\n", attr.GetName(), AttributeType(attr.GetType()))
	return nil
}

func (c *cli) attributeDelete(ctx context.Context, args []string) error {
	parts := strings.Split(args[0], "/")
	if len(parts) != 4 || parts[0] != "objects" || parts[1] == "" || parts[2] != "attributes" || parts[3] == "" {
		return command.Usagef("%q is not an attribute: want objects/OBJECT/attributes/ID (as intakectl attribute list shows)", args[0])
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.model.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: args[0]}); err != nil {
		return c.apiError("delete attribute "+args[0], err)
	}
	if c.output == "table" {
		fmt.Fprintf(c.sys.Stdout, "deleted %s\n", args[0])
	}
	return nil
}
