package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The targets for the gateway against the bare server.
const (
	targetRPSRatio = 0.8 // at least
	targetP99Ratio = 1.5 // at most
)

// Memory is flat when the last third's mean RSS exceeds the first third's
// by at most flatGrowth of it, or by at most flatSlack.
const (
	flatGrowth = 0.10
	flatSlack  = 1 << 20
)

// machine describes where the test ran.
type machine struct {
	cpu        string
	cores      int
	kernel     string
	goVersion  string
	wrk        string
	loadBefore string
	loadAfter  string
	date       string
}

func readMachine(wrkVersion string) machine {
	m := machine{
		cores:      runtime.NumCPU(),
		goVersion:  runtime.Version(),
		wrk:        wrkVersion,
		loadBefore: readLoadAvg(),
		date:       time.Now().UTC().Format("2006-01-02"),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// readLoadAvg returns the 1, 5 and 15 minute load averages.
func readLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// writeReport prints the results as Markdown.
func writeReport(w io.Writer, o options, m machine, results []result, prof *profile) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("## Gateway load test")
	p("")
	p("```")
	p("%s", o.command)
	p("```")
	p("")
	p("%s, %s, %d cores, %s, %s, %s. Load average (1, 5, 15 min) %s before, %s after.",
		m.date, orUnknown(m.cpu), m.cores, orUnknown(m.kernel), m.goVersion, m.wrk, m.loadBefore, m.loadAfter)
	p("Each server runs alone as its own process on 127.0.0.1 and gets the same load: "+
		"`wrk -t%d -c%d -d%s --latency`, after a %s warm-up, each request a POST of `%s`. "+
		"wrk shares the cores with the server, so on 2 cores the server has about one.",
		o.threads, o.connections, o.duration, o.warmup, requestBody)
	if o.gogc != "" {
		p("Every server process runs with GOGC=%s.", o.gogc)
	}
	p("CPU is the server process's user and system time per request; RSS is sampled every 250 ms, "+
		"and memory is flat when the mean of the run's last third is within %.0f%% or %d MiB of the first third's.",
		flatGrowth*100, flatSlack>>20)
	p("")
	if len(results) > 0 {
		writeResults(p, o, results)
	}
	if prof != nil {
		writeProfile(p, prof)
	}
}

// writeResults prints the table of results and the table of ratios.
func writeResults(p func(string, ...any), o options, results []result) {
	roundCol, roundSep := "", ""
	if o.rounds > 1 {
		roundCol, roundSep = " Round |", "--:|"
	}
	p("| Scenario |%s Server | req/s | p50 | p99 | socket errors | non-2xx | CPU / request | peak RSS | RSS first → last third |", roundCol)
	p("|---|%s---|--:|--:|--:|--:|--:|--:|--:|--:|", roundSep)
	for _, r := range results {
		first, last := r.thirds()
		round := ""
		if o.rounds > 1 {
			round = fmt.Sprintf(" %d |", r.round)
		}
		p("| %s |%s %s | %s | %s | %s | %d | %d | %s | %s | %s → %s |",
			scenarioLabel(r.scenario), round, r.name, fmtCount(r.wrk.RPS()), fmtUS(r.wrk.P50US), fmtUS(r.wrk.P99US),
			r.wrk.SocketErrors(), r.wrk.Status, fmtCPU(r.cpuPerRequest()), fmtMiB(r.peak), fmtMiB(first), fmtMiB(last))
	}
	p("")
	p("| Ratio | req/s (target ≥ %.1f) | p99 (target ≤ %.1f) | CPU / request | peak RSS | gateway memory |", targetRPSRatio, targetP99Ratio)
	p("|---|--:|--:|--:|--:|---|")
	for _, sc := range []string{scenarioLocal, scenarioRemote} {
		var rps, p99, cpu, peak []float64
		flat := 0
		for round := 1; round <= o.rounds; round++ {
			gw, ok1 := find(results, sc, nameGateway, round)
			base, ok2 := find(results, sc, baselineName(sc), round)
			if !ok1 || !ok2 {
				continue
			}
			rps = append(rps, gw.wrk.RPS()/base.wrk.RPS())
			p99 = append(p99, float64(gw.wrk.P99US)/float64(base.wrk.P99US))
			cpu = append(cpu, float64(gw.cpuPerRequest())/float64(base.cpuPerRequest()))
			peak = append(peak, float64(gw.peak)/float64(base.peak))
			word, change := flatness(gw)
			if word == "flat" {
				flat++
			}
			label := scenarioLabel(sc) + ": gateway / " + base.name
			if o.rounds > 1 {
				label += fmt.Sprintf(", round %d", round)
			}
			i := len(rps) - 1
			p("| %s | %.2f (%s) | %.2f (%s) | %.2f | %.2f | %s %s |", label,
				rps[i], verdict(rps[i] >= targetRPSRatio), p99[i], verdict(p99[i] <= targetP99Ratio), cpu[i], peak[i], word, change)
		}
		if o.rounds > 1 && len(rps) > 0 {
			mr, mp := median(rps), median(p99)
			p("| **%s: median of %d rounds** | **%.2f** (%s) | **%.2f** (%s) | **%.2f** | **%.2f** | flat in %d of %d |",
				scenarioLabel(sc), len(rps), mr, verdict(mr >= targetRPSRatio), mp, verdict(mp <= targetP99Ratio),
				median(cpu), median(peak), flat, len(rps))
		}
	}
	var logged []string
	for _, r := range results {
		if r.name == nameGateway && r.logLines > 0 {
			logged = append(logged, fmt.Sprintf("%s: %d", scenarioLabel(r.scenario), r.logLines))
		}
	}
	if len(logged) > 0 {
		p("")
		p("The gateway logged lines at warn or above (%s); -v shows the first.", strings.Join(logged, ", "))
	}
	if o.verbose {
		p("")
		for _, r := range results {
			p("- %s, %s answers `%s`", scenarioLabel(r.scenario), r.name, r.answer)
			for _, l := range r.logHead {
				p("  - logged `%s`", l)
			}
		}
	}
}

// writeProfile prints what -profile found.
func writeProfile(p func(string, ...any), pr *profile) {
	p("")
	p("### Where the time goes (%s scenario)", scenarioLabel(pr.scenario))
	p("")
	p("Each server again under the same load, with net/http/pprof (the gateway's added with `go build -overlay`), "+
		"a CPU profile of %d s of the run, and the runtime's allocation counters read before and after it.", pr.seconds)
	p("")
	p("| Server | req/s | p50 | p99 | CPU / request | allocations / request | bytes allocated / request | GCs in the run |")
	p("|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, x := range []profiled{pr.baseline, pr.gateway} {
		r := x.run
		p("| %s | %s | %s | %s | %s | %.1f | %s | %d |", r.name, fmtCount(r.wrk.RPS()), fmtUS(r.wrk.P50US), fmtUS(r.wrk.P99US),
			fmtCPU(r.cpuPerRequest()), x.mallocs, fmtCount(x.allocBytes), x.gcs)
	}
	for _, x := range []profiled{pr.gateway, pr.baseline} {
		p("")
		p("%s, `go tool pprof -top %s`:", x.run.name, x.path)
		p("")
		p("```")
		p("%s", x.topFlat)
		p("```")
		p("")
		p("%s, by cumulative time (`-cum`):", x.run.name)
		p("")
		p("```")
		p("%s", x.topCum)
		p("```")
		p("")
		p("%s, allocation sites by objects allocated since it started (`-sample_index=alloc_objects`):", x.run.name)
		p("")
		p("```")
		p("%s", x.topAllocs)
		p("```")
	}
}

// find returns the result of name in scenario and round.
func find(results []result, scenario, name string, round int) (result, bool) {
	for _, r := range results {
		if r.scenario == scenario && r.name == name && r.round == round {
			return r, true
		}
	}
	return result{}, false
}

// baselineName is the server the gateway is compared with in scenario.
func baselineName(scenario string) string {
	if scenario == scenarioRemote {
		return nameRevProxy
	}
	return nameBare
}

func scenarioLabel(scenario string) string {
	if scenario == scenarioRemote {
		return "remote instance"
	}
	return "in-process instance"
}

func verdict(ok bool) string {
	if ok {
		return "meets"
	}
	return "misses"
}

// flatness says whether r's memory stayed flat ("flat" or "growing"), and
// the change from the first third to the last.
func flatness(r result) (word, change string) {
	first, last := r.thirds()
	if first == 0 {
		return "unknown", "(too few samples)"
	}
	d := last - first
	word = "flat"
	if d > flatSlack && float64(d) > flatGrowth*float64(first) {
		word = "growing"
	}
	return word, fmt.Sprintf("(%+.1f MiB, %+.1f%%)", float64(d)/(1<<20), 100*float64(d)/float64(first))
}

// median returns the median of xs, which must not be empty.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// fmtUS formats microseconds as µs below a millisecond, else ms.
func fmtUS(us int64) string {
	if us < 1000 {
		return strconv.FormatInt(us, 10) + " µs"
	}
	return strconv.FormatFloat(float64(us)/1000, 'f', 2, 64) + " ms"
}

// fmtCPU formats a CPU time per request in µs.
func fmtCPU(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + " µs"
}

// fmtMiB formats bytes in MiB.
func fmtMiB(b int64) string {
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

// fmtCount formats n rounded, with thousands separators.
func fmtCount(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
