package mapping

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Limits of a function entry. Comprehension macros (all, exists, map,
// filter, ...) are not available, so a function cannot loop. What is left
// (string functions over long cells, replace over replace, ...) is bounded
// by a cost limit: when the function is compiled, CEL estimates its
// worst-case cost for cells of up to maxCellEstimate bytes; a function whose
// estimate is within functionCostLimit (the usual concatenations,
// conversions, comparisons) runs without tracking its cost, any other one
// runs with the limit enforced per row (a row over it is rejected).
const (
	// maxFunctionLen is the longest function, in code points.
	maxFunctionLen = 4096
	// maxFunctionDepth bounds the nesting of a function's expression.
	maxFunctionDepth = 32
	// maxCellEstimate is the cell size the cost estimate assumes.
	maxCellEstimate = 64 << 10
	// functionCostLimit is the most a function may cost per row, in CEL's
	// cost units (about one per operation, one per 10 bytes of a string
	// operation).
	functionCostLimit = 1_000_000
)

// The variables of a function besides the header's columns.
const (
	varCol = "col"
	varRow = "row"
)

// celReserved are the words a column's name cannot be as a CEL variable:
// CEL's reserved words, its type names, and the function's own variables.
var celReserved = map[string]bool{
	"as": true, "break": true, "const": true, "continue": true, "else": true,
	"false": true, "for": true, "function": true, "if": true, "import": true,
	"in": true, "let": true, "loop": true, "package": true, "namespace": true,
	"null": true, "return": true, "true": true, "var": true, "void": true,
	"while": true,
	"int":   true, "uint": true, "double": true, "bool": true, "string": true,
	"bytes": true, "list": true, "map": true, "type": true, "null_type": true,
	"dyn": true, "has": true,
	varCol: true, varRow: true,
}

// ColumnVariable reports whether a column of the header is also a variable
// of the functions (besides col["name"]): its name is a CEL identifier and
// not a reserved word.
func ColumnVariable(name string) bool {
	if name == "" || celReserved[name] || strings.HasPrefix(name, "__") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// functionEnv is the CEL environment of a plan's functions: col, row and
// the header's columns that are identifiers.
type functionEnv struct {
	env  *cel.Env
	vars map[string]int // column variable -> header position
}

// functionLibrary is the environment shared by every function, before the
// variables of a header are added.
func functionLibrary() []cel.EnvOption {
	return []cel.EnvOption{
		cel.ClearMacros(), cel.Macros(cel.HasMacro),
		ext.Strings(),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(maxFunctionLen),
		cel.ParserRecursionLimit(maxFunctionDepth),
		cel.Variable(varCol, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(varRow, cel.IntType),
	}
}

func newFunctionEnv(header []string) (*functionEnv, error) {
	fe := &functionEnv{vars: map[string]int{}}
	opts := functionLibrary()
	for i, h := range header {
		if _, dup := fe.vars[h]; dup || !ColumnVariable(h) {
			continue
		}
		fe.vars[h] = i
		opts = append(opts, cel.Variable(h, cel.StringType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("function environment: %w", err)
	}
	fe.env = env
	return fe, nil
}

// function is a compiled function entry.
type function struct {
	prg cel.Program
	// concat, when set, is the function as a concatenation of literals and
	// cells (col["A"] + " " + B), which the mapper evaluates natively: the
	// same result as CEL's, at a fraction of the cost.
	concat []concatPart
}

// concatPart is a string literal (col < 0) or the cell of column col.
type concatPart struct {
	lit string
	col int
}

// concatParts returns the parts of an expression made only of string
// literals and cells joined by '+', or false.
func concatParts(e celast.Expr, index, vars map[string]int) ([]concatPart, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		if s, ok := e.AsLiteral().(types.String); ok {
			return []concatPart{{lit: string(s), col: -1}}, true
		}
	case celast.IdentKind:
		if i, ok := vars[e.AsIdent()]; ok {
			return []concatPart{{col: i}}, true
		}
	case celast.SelectKind:
		s := e.AsSelect()
		if op := s.Operand(); !s.IsTestOnly() && op.Kind() == celast.IdentKind && op.AsIdent() == varCol {
			if i, ok := index[s.FieldName()]; ok {
				return []concatPart{{col: i}}, true
			}
		}
	case celast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch {
		case c.FunctionName() == operators.Index && len(args) == 2 && !c.IsMemberFunction():
			if args[0].Kind() == celast.IdentKind && args[0].AsIdent() == varCol && args[1].Kind() == celast.LiteralKind {
				if k, ok := args[1].AsLiteral().(types.String); ok {
					if i, ok := index[string(k)]; ok {
						return []concatPart{{col: i}}, true
					}
				}
			}
		case c.FunctionName() == operators.Add && len(args) == 2 && !c.IsMemberFunction():
			l, ok1 := concatParts(args[0], index, vars)
			r, ok2 := concatParts(args[1], index, vars)
			if ok1 && ok2 {
				return append(l, r...), true
			}
		}
	}
	return nil, false
}

// compile parses and type-checks a function entry against the target's
// converter (checked only when convOK), and checks that the columns it names
// are in the header.
func (fe *functionEnv) compile(i int, attr, expr string, conv *converter, convOK bool, index, count map[string]int, header []string) (*function, []Problem) {
	n := i + 1
	var problems []Problem
	add := func(column string, code Code, format string, args ...any) {
		problems = append(problems, Problem{Entry: i, Attribute: attr, Column: column, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	ast, iss := fe.env.CompileSource(common.NewStringSource(expr, "function"))
	if iss.Err() != nil {
		add("", CodeFunctionDoesNotCompile, "entry %d (attribute %s): the function does not compile: %v", n, attr, iss.Err())
		return nil, problems
	}
	if celast.ExceedsDepth(ast.NativeRep(), maxFunctionDepth) {
		add("", CodeFunctionDoesNotCompile, "entry %d (attribute %s): the function is nested more than %d levels deep", n, attr, maxFunctionDepth)
		return nil, problems
	}
	out := ast.OutputType()
	switch out.Kind() {
	case types.StringKind, types.IntKind, types.UintKind, types.DoubleKind, types.BoolKind, types.NullTypeKind, types.DynKind:
		if convOK {
			if reason := conv.takes(out.Kind()); reason != "" {
				add("", CodeFunctionType, "function of entry %d returns %s; %s", n, out, reason)
			}
		}
	default:
		add("", CodeFunctionType, "function of entry %d returns %s; want string, number, bool or null", n, out)
	}
	for _, c := range referencedColumns(ast.NativeRep().Expr(), fe.vars) {
		switch {
		case count[c] == 0:
			add(c, CodeColumnNotInHeader, "column %q (function of entry %d, attribute %s) is not in the file's header;%s the header has: %s",
				c, n, attr, suggest(c, header), listHeader(header))
		case count[c] > 1:
			add(c, CodeAmbiguousColumn, "column %q (function of entry %d, attribute %s) appears %d times in the file's header", c, n, attr, count[c])
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	est, err := fe.env.EstimateCost(ast, cellSizes{columns: uint64(len(header))})
	if err != nil {
		est.Max = math.MaxUint64 // track it at run time
	}
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if est.Max > functionCostLimit {
		popts = append(popts, cel.CostLimit(functionCostLimit))
	}
	prg, err := fe.env.Program(ast, popts...)
	if err != nil {
		add("", CodeFunctionDoesNotCompile, "entry %d (attribute %s): the function does not compile: %v", n, attr, err)
		return nil, problems
	}
	fn := &function{prg: prg}
	if out.Kind() == types.StringKind {
		if parts, ok := concatParts(ast.NativeRep().Expr(), index, fe.vars); ok {
			fn.concat = parts
		}
	}
	return fn, nil
}

// cellSizes tells CEL's cost estimate the sizes of a function's inputs.
type cellSizes struct{ columns uint64 }

// EstimateSize implements cost.Estimator.
func (c cellSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	var est cost.SizeEstimate
	switch {
	case path[0] == varRow:
		return nil
	case path[0] == varCol && len(path) == 1:
		est = cost.RangedSizeEstimate(0, c.columns)
	default: // a cell: col's keys and values, a column variable
		est = cost.RangedSizeEstimate(0, maxCellEstimate)
	}
	return &est
}

// EstimateCallCost implements cost.Estimator.
func (cellSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// takes says why a function whose result has the given kind cannot fill an
// attribute of the converter's type, or "".
func (c *converter) takes(k types.Kind) string {
	switch c.typ {
	case intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY:
		if k == types.BoolKind {
			return "a " + typeName(c.typ) + " attribute takes a number or a string"
		}
	case intakev1.AttributeType_ATTRIBUTE_TYPE_DATE, intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP:
		if k == types.BoolKind {
			return "a " + typeName(c.typ) + " attribute takes a string"
		}
		if (k == types.IntKind || k == types.UintKind || k == types.DoubleKind) && c.date.kind != dateUnix && c.date.kind != dateUnixMs {
			return "a " + typeName(c.typ) + " attribute takes a string, or a number with the source format unix or unix_ms"
		}
	case intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY:
		if k == types.BoolKind {
			return "a foreign key attribute takes a string or a number"
		}
	}
	return ""
}

// referencedColumns lists the columns an expression names literally: as
// col["Name"], col.Name or a column variable, in order, once each.
func referencedColumns(e celast.Expr, vars map[string]int) []string {
	var cols []string
	seen := map[string]bool{}
	addCol := func(c string) {
		if !seen[c] {
			seen[c] = true
			cols = append(cols, c)
		}
	}
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			s := e.AsSelect()
			if op := s.Operand(); op.Kind() == celast.IdentKind && op.AsIdent() == varCol {
				addCol(s.FieldName())
			}
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
				return
			}
			m, k := c.Args()[0], c.Args()[1]
			if m.Kind() == celast.IdentKind && m.AsIdent() == varCol && k.Kind() == celast.LiteralKind {
				if s, ok := k.AsLiteral().(types.String); ok {
					addCol(string(s))
				}
			}
		case celast.IdentKind:
			if id := e.AsIdent(); vars == nil && ColumnVariable(id) || vars != nil && hasKey(vars, id) {
				addCol(id)
			}
		}
	}))
	return cols
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

// UsedColumns returns the source columns a mapping spec reads, in the order
// of its entries: the column of every column entry and the columns every
// function names (col["Name"], col.Name or Name). Functions that do not
// parse are skipped (Compile reports them). A column computed at run time
// (col[someExpression]) cannot be known.
func UsedColumns(spec *intakev1.MappingSpec) []string {
	var cols []string
	seen := map[string]bool{}
	add := func(c string) {
		if c != "" && !seen[c] {
			seen[c] = true
			cols = append(cols, c)
		}
	}
	var env *cel.Env
	for _, e := range spec.GetEntries() {
		switch src := e.GetSource().(type) {
		case *intakev1.MappingEntry_Column:
			add(src.Column)
		case *intakev1.MappingEntry_Function:
			if env == nil {
				var err error
				if env, err = cel.NewEnv(functionLibrary()...); err != nil {
					return cols
				}
			}
			ast, iss := env.Parse(src.Function)
			if iss.Err() != nil {
				continue
			}
			// Unchecked, every free identifier but col and row is a column.
			for _, c := range referencedColumns(ast.NativeRep().Expr(), nil) {
				add(c)
			}
		}
	}
	return cols
}

// rowActivation binds a function's variables to the record being mapped.
// A Mapper keeps one and points it at each record, so evaluating a function
// allocates no map of the row.
type rowActivation struct {
	p      *Plan
	record []string
	row    int64
	cols   colMap
}

var _ interpreter.Activation = (*rowActivation)(nil)

func newRowActivation(p *Plan) *rowActivation {
	a := &rowActivation{p: p}
	a.cols.a = a
	return a
}

// ResolveName implements interpreter.Activation.
func (a *rowActivation) ResolveName(name string) (any, bool) {
	switch name {
	case varCol:
		return &a.cols, true
	case varRow:
		return types.Int(a.row), true
	}
	if i, ok := a.p.fvars[name]; ok {
		return types.String(a.p.cellText(a.record[i])), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *rowActivation) Parent() interpreter.Activation { return nil }

// cellText is a cell as a function sees it: "" when null, trimmed when the
// dialect trims, else as written.
func (p *Plan) cellText(raw string) string {
	s := trimSpace(raw)
	if s == "" || (len(p.nulls) > 0 && p.isNull(s)) {
		return ""
	}
	if p.trim {
		return s
	}
	return raw
}

// colMap is the variable col: a map(string, string) over the current record,
// read lazily.
type colMap struct {
	a *rowActivation
}

var _ traits.Mapper = (*colMap)(nil)

func (m *colMap) find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	i, ok := m.a.p.index[string(k)]
	if !ok {
		return nil, false
	}
	return types.String(m.a.p.cellText(m.a.record[i])), true
}

// Find implements traits.Mapper.
func (m *colMap) Find(key ref.Val) (ref.Val, bool) { return m.find(key) }

// Get implements traits.Indexer.
func (m *colMap) Get(key ref.Val) ref.Val {
	v, found := m.find(key)
	if found || types.IsError(v) {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

// Contains implements traits.Container.
func (m *colMap) Contains(key ref.Val) ref.Val {
	v, found := m.find(key)
	if types.IsError(v) {
		return v
	}
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (m *colMap) Size() ref.Val { return types.Int(len(m.a.p.index)) }

// native copies the record into a map, for the rare uses of the whole map.
func (m *colMap) native() ref.Val {
	n := make(map[string]string, len(m.a.p.index))
	for h, i := range m.a.p.index {
		n[h] = m.a.p.cellText(m.a.record[i])
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, n)
}

// Iterator implements traits.Iterable.
func (m *colMap) Iterator() traits.Iterator { return m.native().(traits.Mapper).Iterator() }

// ConvertToNative implements ref.Val.
func (m *colMap) ConvertToNative(t reflect.Type) (any, error) { return m.native().ConvertToNative(t) }

// ConvertToType implements ref.Val.
func (m *colMap) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return m
	}
	return m.native().ConvertToType(t)
}

// Equal implements ref.Val.
func (m *colMap) Equal(other ref.Val) ref.Val { return m.native().Equal(other) }

// Type implements ref.Val.
func (m *colMap) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (m *colMap) Value() any { return m.native().Value() }

// eval runs the function of an entry on the activation's record and
// converts its result for the entry's attribute.
func (m *Mapper) eval(e *entry) (cell, string) {
	if parts := e.fn.concat; parts != nil {
		p, record := m.p, m.act.record
		if len(parts) == 1 && parts[0].col >= 0 {
			return m.convertString(e, p.cellText(record[parts[0].col]))
		}
		buf := m.buf[:0]
		for _, pt := range parts {
			if pt.col < 0 {
				buf = append(buf, pt.lit...)
			} else {
				buf = append(buf, p.cellText(record[pt.col])...)
			}
		}
		m.buf = buf
		return m.convertString(e, m.np.strs.str(buf))
	}
	out, _, err := e.fn.prg.Eval(m.act)
	if err != nil {
		return cell{}, "function: " + err.Error()
	}
	return m.convertResult(e, out)
}

// convertString converts a function's string result as a column's value.
func (m *Mapper) convertString(e *entry, raw string) (cell, string) {
	p := m.p
	s := trimSpace(raw)
	if s == "" || (len(p.nulls) > 0 && p.isNull(s)) {
		return cell{k: kNull}, ""
	}
	if e.conv.keepsSpaces() && !p.trim {
		s = raw
	}
	c, reason := e.conv.convert(&m.np, s)
	if reason != "" {
		return cell{}, "function: " + reason
	}
	return c, ""
}

// convertResult converts a function's result as a column's value would be:
// strings through the entry's source format, numbers and bools directly.
func (m *Mapper) convertResult(e *entry, out ref.Val) (cell, string) {
	switch v := out.(type) {
	case types.String:
		return m.convertString(e, string(v))
	case types.Null:
		return cell{k: kNull}, ""
	case types.Bool:
		switch e.conv.typ {
		case intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN:
			return cell{k: kBool, b: bool(v)}, ""
		case intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT:
			return cell{k: kText, s: strconv.FormatBool(bool(v))}, ""
		}
		return cell{}, "function: returned a bool; a " + typeName(e.conv.typ) + " attribute cannot take it"
	case types.Int, types.Uint, types.Double:
		var s string
		switch n := v.(type) {
		case types.Int:
			s = strconv.FormatInt(int64(n), 10)
		case types.Uint:
			s = strconv.FormatUint(uint64(n), 10)
		case types.Double:
			f := float64(n)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return cell{}, "function: returned " + strconv.FormatFloat(f, 'g', -1, 64) + ", not a number that can be stored"
			}
			s = strconv.FormatFloat(f, 'f', -1, 64)
		}
		switch e.conv.typ {
		case intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY:
			return cell{k: kDecimal, s: s}, ""
		case intakev1.AttributeType_ATTRIBUTE_TYPE_DATE, intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP, intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN:
			// Unix timestamps; 1 and 0.
			c, reason := e.conv.convert(&m.np, s)
			if reason != "" {
				return cell{}, "function: " + reason
			}
			return c, ""
		}
		return cell{k: kText, s: s}, ""
	}
	return cell{}, "function: returned " + typeOf(out) + "; want string, number, bool or null"
}

func typeOf(v ref.Val) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().TypeName()
}
