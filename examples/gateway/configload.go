package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A problem is one thing wrong with a configuration file, located by the
// dotted path of the key and, when known, its line and column.
type problem struct {
	Path   string
	Line   int
	Column int
	Msg    string
}

func (p problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d:%d: ", p.Line, p.Column)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// A configError lists every problem found in one configuration file.
type configError struct {
	File     string
	Problems []problem
}

func (e *configError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

type position struct{ line, column int }

// loadConfig parses and validates a YAML configuration. It reports every
// problem it finds, not only the first: syntax errors, unknown and duplicate
// keys, values of the wrong type and settings that make no sense.
func loadConfig(data []byte, file string) (*config, error) {
	cfg := &config{}
	cfg.setDefaults()
	d := &yamlDecoder{pos: map[string]position{}}

	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &configError{File: file, Problems: []problem{{Msg: "the file is empty"}}}
		}
		return nil, &configError{File: file, Problems: []problem{yamlSyntaxProblem(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p := problem{Msg: "only one YAML document is allowed"}
		if err == nil {
			p.Line, p.Column = extra.Line, extra.Column
		}
		d.problems = append(d.problems, p)
	}

	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	d.decode(doc, reflect.ValueOf(cfg).Elem(), "")
	if len(d.problems) == 0 {
		v := &validator{pos: d.pos}
		cfg.validate(v)
		slices.SortStableFunc(v.problems, func(a, b problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		d.problems = append(d.problems, v.problems...)
	}
	if len(d.problems) > 0 {
		return nil, &configError{File: file, Problems: d.problems}
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlSyntaxProblem turns a yaml.v3 syntax error into a problem, keeping
// the line number yaml.v3 puts in its message.
func yamlSyntaxProblem(err error) problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := problem{Msg: "syntax error: " + msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = "syntax error: " + strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(msg, m[0]), ":"))
	}
	return p
}

// yamlDecoder fills Go values from a yaml.Node tree, strictly: unknown keys,
// duplicate keys, anchors and values of the wrong kind are problems, and it
// keeps going after one so that the user sees all of them at once. It
// records where each key was found, for the validator's messages.
type yamlDecoder struct {
	problems []problem
	pos      map[string]position
}

func (d *yamlDecoder) add(n *yaml.Node, path, format string, args ...any) {
	d.problems = append(d.problems, problem{Path: path, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[time.Duration]()

type defaulter interface{ setDefaults() }

// newValue returns a new value of type t (a pointer type gets a pointer to a
// new value) with its defaults set.
func newValue(t reflect.Type) reflect.Value {
	if t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		if df, ok := p.Interface().(defaulter); ok {
			df.setDefaults()
		}
		return p
	}
	v := reflect.New(t).Elem()
	if df, ok := v.Addr().Interface().(defaulter); ok {
		df.setDefaults()
	}
	return v
}

func (d *yamlDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.pos[path] = position{n.Line, n.Column}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.add(n, path, "anchors and aliases are not supported; write the value out")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// "cache:" with nothing after it turns the section on with its
		// defaults; any other empty value keeps the default.
		if v.Kind() == reflect.Pointer && v.IsNil() {
			v.Set(newValue(v.Type()))
		}
		return
	}
	switch {
	case v.Type() == durationType:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.add(n, path, "want a duration such as 250ms, 5s or 1m, got %s", describe(n, path))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.add(n, path, "want a duration such as 250ms, 5s or 1m, got %q", n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(newValue(v.Type()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(n, path, "want a list, got %s", describe(n, path))
			return
		}
		s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		for i, item := range n.Content {
			e := newValue(v.Type().Elem())
			d.decode(item, e, fmt.Sprintf("%s[%d]", path, i))
			s = reflect.Append(s, e)
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.add(n, path, "want a string, got %s (quote it if you mean the text)", describe(n, path))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.add(n, path, "want true or false, got %s", describe(n, path))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.add(n, path, "want a whole number, got %s", describe(n, path))
			return
		}
		v.SetInt(i)
	case reflect.Uint64:
		var u uint64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&u) != nil {
			d.add(n, path, "want a whole number at least 0, got %s", describe(n, path))
			return
		}
		v.SetUint(u)
	case reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.add(n, path, "want a number, got %s", describe(n, path))
			return
		}
		v.SetFloat(f)
	default:
		panic("gateway: configuration field of unsupported kind " + v.Kind().String())
	}
}

// mappingKeys checks that n is a mapping whose keys are distinct strings
// and calls f for each key and value.
func (d *yamlDecoder) mappingKeys(n *yaml.Node, path string, f func(key string, k, val *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.add(n, path, "want a mapping of keys to values, got %s", describe(n, path))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.add(k, path, "keys must be plain strings (merge keys are not supported)")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(k, joinPath(path, k.Value), "duplicate key %q (first set at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		f(k.Value, k, val)
	}
}

func (d *yamlDecoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	d.mappingKeys(n, path, func(key string, k, val *yaml.Node) {
		i, ok := fields[key]
		if !ok {
			d.add(k, joinPath(path, key), "unknown key %q%s (known keys: %s)", key, suggest(key, names), strings.Join(names, ", "))
			return
		}
		d.decode(val, v.Field(i), joinPath(path, key))
	})
}

func (d *yamlDecoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		panic("gateway: configuration map with non-string keys")
	}
	m := reflect.MakeMap(v.Type())
	d.mappingKeys(n, path, func(key string, _, val *yaml.Node) {
		e := newValue(v.Type().Elem())
		d.decode(val, e, joinPath(path, key))
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
	})
	v.Set(m)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// secretKeys are the keys whose values no message repeats: problems go to
// the log, the reload route's answer and the event stream.
var secretKeys = []string{"password"}

// describe names what the node at path holds, for messages: its kind and,
// unless its key is a secret one, the start of its value.
func describe(n *yaml.Node, path string) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	kind := map[string]string{
		"!!str": "text", "!!int": "a whole number", "!!float": "a number",
		"!!bool": "a boolean", "!!null": "nothing", "!!timestamp": "a timestamp",
	}[n.ShortTag()]
	if kind == "" {
		kind = n.ShortTag()
	}
	if slices.Contains(secretKeys, path[strings.LastIndexByte(path, '.')+1:]) {
		return kind
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return fmt.Sprintf("%s %q", kind, v)
}

// suggest returns ` (did you mean "x"?)` when a known key is one edit or
// a transposition away from key.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// A validator collects semantic problems and locates them with the
// positions the decoder recorded.
type validator struct {
	pos      map[string]position
	problems []problem
}

// errorf records a problem at path, located at path's key or, when the key
// is absent (a required setting), at its nearest present parent.
func (v *validator) errorf(path, format string, args ...any) {
	p := problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	for q := path; ; {
		if at, ok := v.pos[q]; ok {
			p.Line, p.Column = at.line, at.column
			break
		}
		i := max(strings.LastIndexByte(q, '.'), strings.LastIndexByte(q, '['))
		if i < 0 {
			break
		}
		q = q[:i]
	}
	v.problems = append(v.problems, p)
}

// isSet reports whether the file sets the key at path.
func (v *validator) isSet(path string) bool {
	_, ok := v.pos[path]
	return ok
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
