// Command ratios turns benchstat's CSV summary of the bench module's
// results into the Markdown tables of BENCHMARKS.md: each of our
// benchmarks' median, as a ratio to the floor (the direct call), to the
// bare mechanism and to the peers; and parallel against serial, in wall
// time (ns/op) and in CPU time (cpu-ns/op, which other processes on a
// shared machine do not inflate). On 2 cores, a parallel run is no slower
// per call than a serial one when its CPU time per call is at most twice
// the serial one.
//
//	benchstat -format csv -col /impl -row .name,/picker,/obs,/variant,/run results.txt | go run ./cmd/ratios
//
// It reads the sec/op, cpu-ns/op and allocs/op tables of the CSV from
// standard input and writes Markdown to standard output.
package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
)

// A row is one benchmark and run mode: its medians by implementation.
type row struct {
	name, run string
	ns        map[string]float64
	cpu       map[string]float64 // cpu-ns/op
	allocs    map[string]float64
}

func main() {
	rows, err := parse(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	write(os.Stdout, rows)
}

// parse reads benchstat's CSV: blocks separated by blank lines, each with
// two header lines (the implementations, then the units) and a line per
// benchmark.
func parse(r io.Reader) ([]*row, error) {
	var (
		rows   []*row
		byName = map[string]*row{}
		block  []string
	)
	flush := func() error {
		defer func() { block = nil }()
		if len(block) < 3 {
			return nil
		}
		cr := csv.NewReader(strings.NewReader(strings.Join(block, "\n")))
		cr.FieldsPerRecord = -1 // benchstat leaves out trailing empty fields
		recs, err := cr.ReadAll()
		if err != nil {
			return err
		}
		impls, units := recs[0], recs[1]
		var unit string
		switch {
		case slices.Contains(units, "sec/op"):
			unit = "sec/op"
		case slices.Contains(units, "allocs/op"):
			unit = "allocs/op"
		case slices.Contains(units, "cpu-sec/op"): // benchstat's name for cpu-ns/op
			unit = "cpu-sec/op"
		default:
			return nil
		}
		for _, rec := range recs[2:] {
			if len(rec) == 0 || rec[0] == "geomean" {
				continue
			}
			name, run := rec[0], ""
			if i := strings.LastIndexByte(name, ' '); i >= 0 {
				name, run = name[:i], name[i+1:]
			}
			rw := byName[rec[0]]
			if rw == nil {
				rw = &row{name: name, run: run, ns: map[string]float64{}, cpu: map[string]float64{}, allocs: map[string]float64{}}
				byName[rec[0]] = rw
				rows = append(rows, rw)
			}
			for i := 1; i < len(rec) && i < len(units); i++ {
				if units[i] != unit || rec[i] == "" {
					continue
				}
				v, err := strconv.ParseFloat(rec[i], 64)
				if err != nil {
					continue
				}
				switch impl := impls[i]; unit {
				case "sec/op":
					rw.ns[impl] = v * 1e9
				case "cpu-sec/op":
					rw.cpu[impl] = v * 1e9
				default:
					rw.allocs[impl] = v
				}
			}
		}
		return nil
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case strings.Contains(line, ",") || len(block) > 0:
			block = append(block, line)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return rows, sc.Err()
}

func write(w io.Writer, rows []*row) {
	floor := map[string]float64{}
	for _, r := range rows {
		if r.name == "Floor" {
			floor[r.run] = r.ns["direct"]
		}
	}
	ns := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		if v < 100 {
			return strconv.FormatFloat(v, 'f', 1, 64)
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	ratio := func(a, b float64, ok bool) string {
		if !ok || b == 0 {
			return ""
		}
		return strconv.FormatFloat(a/b, 'f', 2, 64)
	}
	allocs := func(r *row, impl string) string {
		v, ok := r.allocs[impl]
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}

	fmt.Fprintln(w, "| benchmark | run | ours ns/op | allocs | × floor | bare ns/op | ours ÷ bare | failsafe ns/op (allocs) | failsafe ÷ ours | go-kit ns/op (allocs) | go-kit ÷ ours |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		ours, ok := r.ns["ours"]
		if !ok {
			continue
		}
		bare, hasBare := r.ns["bare"]
		fs, hasFS := r.ns["failsafe"]
		kit, hasKit := r.ns["gokit"]
		fsCell, kitCell := "", ""
		if hasFS {
			fsCell = ns(fs, true) + " (" + allocs(r, "failsafe") + ")"
		}
		if hasKit {
			kitCell = ns(kit, true) + " (" + allocs(r, "gokit") + ")"
		}
		fl, hasFloor := floor[r.run]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.name, r.run, ns(ours, true), allocs(r, "ours"), ratio(ours, fl, hasFloor),
			ns(bare, hasBare), ratio(ours, bare, hasBare),
			fsCell, ratio(fs, ours, hasFS), kitCell, ratio(kit, ours, hasKit))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | impl | serial ns/op | parallel ns/op | parallel ÷ serial | serial cpu-ns/op | parallel cpu-ns/op | parallel ÷ serial, CPU |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	type key struct{ name, impl string }
	serial := map[key]*row{}
	for _, r := range rows {
		if r.run == "serial" {
			for impl := range r.ns {
				serial[key{r.name, impl}] = r
			}
		}
	}
	for _, r := range rows {
		if r.run != "parallel" {
			continue
		}
		for _, impl := range []string{"ours", "bare", "failsafe", "gokit", "direct"} {
			p, ok := r.ns[impl]
			sr := serial[key{r.name, impl}]
			if !ok || sr == nil {
				continue
			}
			s := sr.ns[impl]
			pc, pok := r.cpu[impl]
			sc, sok := sr.cpu[impl]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, impl,
				ns(s, true), ns(p, true), ratio(p, s, true), ns(sc, sok), ns(pc, pok), ratio(pc, sc, pok && sok))
		}
	}
}
