package store

import (
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/intakehq/intake/pkg/objects"
)

// ident quotes a column name.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func pgType(a objects.Attribute) string { return objects.PostgresType(a.Type) }

func join(names []string, prefix, sep string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(prefix)
		b.WriteString(ident(n))
	}
	return b.String()
}

// keysOn is the join condition of the object's keys between t and s.
func keysOn(obj *objects.Object) string {
	var b strings.Builder
	for i, k := range obj.Keys {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString("t." + ident(k) + " = s." + ident(k))
	}
	return b.String()
}

// countsSQL returns one row: the number of distinct keys staged, the number
// of staged rows, and the number of distinct keys not in the object table.
// Key columns of object tables are NOT NULL, so a NULL first key of t means
// no match.
func countsSQL(table pgx.Identifier, sh *shape) string {
	obj := sh.object
	keys := join(obj.Keys, "", ", ")
	return "SELECT count(*), coalesce(sum(s._n), 0)::bigint, count(*) FILTER (WHERE t." + ident(obj.Keys[0]) + " IS NULL)" +
		" FROM (SELECT " + keys + ", count(*) AS _n FROM " + table.Sanitize() + " GROUP BY " + keys + ") s" +
		" LEFT JOIN " + sh.table() + " t ON " + keysOn(obj)
}

// updatable are the mapped attributes a merge may update: the non-key
// ones, none for an append-only object.
func updatable(sh *shape) []string {
	if sh.object.AppendOnly {
		return nil
	}
	var out []string
	for _, n := range sh.names() {
		if !sh.object.IsKey(n) {
			out = append(out, n)
		}
	}
	return out
}

// source is the merge's source: the staging table, reduced to the last row
// of the file per key when dedupe (MERGE may not touch a row twice).
func source(table pgx.Identifier, sh *shape, dedupe bool) string {
	src := table.Sanitize()
	if dedupe {
		keys := join(sh.object.Keys, "", ", ")
		src = "(SELECT DISTINCT ON (" + keys + ") " + join(sh.names(), "", ", ") + " FROM " + src +
			" ORDER BY " + keys + `, "_row" DESC)`
	}
	return src
}

// changedCondition is true for a staged row whose updatable attributes
// differ from the object table's row.
func changedCondition(cols []string) string {
	var b strings.Builder
	for i, n := range cols {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("t." + ident(n) + " IS DISTINCT FROM s." + ident(n))
	}
	return b.String()
}

// mergeSQL merges the staged rows into the object table; $1 is the run id,
// stored in _run of every row the run inserts or changes. With dedupe the
// source is reduced to the last row of the file per key first. Existing
// keys are updated only when a mapped attribute changes, and only in the
// mapped attributes — never for an append-only object, whose existing keys
// stay as they are (counted unchanged); new keys are inserted only when the
// run allows new records. It returns "" when there is nothing the merge
// could do.
func mergeSQL(table pgx.Identifier, sh *shape, dedupe bool) string {
	obj := sh.object
	names := sh.names()
	upd := updatable(sh)
	if len(upd) == 0 && !sh.allowNew {
		return ""
	}
	var b strings.Builder
	b.WriteString("MERGE INTO " + sh.table() + " t USING " + source(table, sh, dedupe) + " s ON " + keysOn(obj))
	if len(upd) > 0 {
		b.WriteString(" WHEN MATCHED AND (" + changedCondition(upd) + ") THEN UPDATE SET ")
		for _, n := range upd {
			b.WriteString(ident(n) + " = s." + ident(n) + ", ")
		}
		b.WriteString("_run = $1, _updated_at = now()")
	}
	if sh.allowNew {
		b.WriteString(" WHEN NOT MATCHED THEN INSERT (" + join(names, "", ", ") + ", _run) VALUES (" + join(names, "s.", ", ") + ", $1)")
	}
	return b.String()
}

// changedSQL counts the existing keys a merge would update (for a dry
// run); "" when it would update none.
func changedSQL(table pgx.Identifier, sh *shape, dedupe bool) string {
	upd := updatable(sh)
	if len(upd) == 0 {
		return ""
	}
	return "SELECT count(*) FROM " + source(table, sh, dedupe) + " s JOIN " + sh.table() + " t ON " + keysOn(sh.object) +
		" WHERE " + changedCondition(upd)
}
