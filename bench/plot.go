package bench

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// The plot is one self-contained HTML file with inline SVG: the latency
// distribution by percentile (HdrHistogram's log "1/(1-q)" axis), throughput
// over time and p50/p99 over time, one line per result. No scripts, no
// external resources.

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

type line struct {
	name   string
	color  string
	dashed bool
	xs, ys []float64
}

type tick struct {
	v     float64
	label string
}

const (
	plotW, plotH = 760, 320
	padL, padR   = 70, 20
	padT, padB   = 30, 45
)

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	switch {
	case v >= 1e6:
		return trimZeros(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e3:
		return trimZeros(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case v >= 1 || v == 0:
		return trimZeros(fmt.Sprintf("%.1f", v))
	default:
		return trimZeros(fmt.Sprintf("%.3f", v))
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// svgChart draws lines in a chart with a linear y axis from 0.
func svgChart(b *strings.Builder, title, xlabel, ylabel string, lines []line, xMin, xMax float64, xTicks []tick, shadeTo float64) {
	yMax := 0.0
	for _, l := range lines {
		for _, y := range l.ys {
			yMax = math.Max(yMax, y)
		}
	}
	yMax = niceMax(yMax)
	if xMax <= xMin {
		xMax = xMin + 1
	}
	iw, ih := float64(plotW-padL-padR), float64(plotH-padT-padB)
	px := func(x float64) float64 { return padL + (x-xMin)/(xMax-xMin)*iw }
	py := func(y float64) float64 { return padT + ih - y/yMax*ih }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", padL, html.EscapeString(title))
	if shadeTo > xMin {
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="#eee"/><text x="%.1f" y="%.1f" fill="#888">warm-up</text>`+"\n",
			px(xMin), padT, px(math.Min(shadeTo, xMax))-px(xMin), ih, px(xMin)+4, padT+ih-6)
	}
	// Axes and grid.
	for i := 0; i <= 5; i++ {
		y := yMax * float64(i) / 5
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			padL, py(y), plotW-padR, py(y), padL-6, py(y)+4, fmtTick(y))
	}
	for _, t := range xTicks {
		if t.v < xMin || t.v > xMax {
			continue
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n",
			px(t.v), padT, px(t.v), padT+ih, px(t.v), padT+ih+15, html.EscapeString(t.label))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", padL, padT, iw, ih)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", padL+iw/2, plotH-8, html.EscapeString(xlabel))
	fmt.Fprintf(b, `<text x="14" y="%.1f" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>`+"\n",
		padT+ih/2, padT+ih/2, html.EscapeString(ylabel))
	// Lines and legend.
	for i, l := range lines {
		var pts []string
		for j := range l.xs {
			if j < len(l.ys) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.xs[j]), py(l.ys[j])))
			}
		}
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="5,3"`
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`+"\n", l.color, dash, strings.Join(pts, " "))
		ly := padT + 14 + 14*i
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%d">%s</text>`+"\n",
			padL+10.0, ly-4, padL+30.0, ly-4, l.color, dash, padL+34.0, ly, html.EscapeString(l.name))
	}
	b.WriteString("</svg>\n")
}

// percentileX maps a quantile to HdrHistogram's log axis.
func percentileX(q float64) float64 { return math.Log10(1 / (1 - q)) }

// PlotHTML renders the report's plot.
func PlotHTML(r *Report) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>fieldvault bench</title>\n")
	b.WriteString("<style>body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;font-size:12px}" +
		"td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f4f4f4}</style></head><body>\n")
	fmt.Fprintf(&b, "<h2>fieldvault bench: %s</h2>\n", html.EscapeString(r.Config.Scenario))
	fmt.Fprintf(&b, "<p>%s, %d cores, %s, %s &mdash; load %s (after: %s) &mdash; %s</p>\n",
		html.EscapeString(r.Machine.CPU), r.Machine.Cores, html.EscapeString(r.Machine.Kernel), html.EscapeString(r.Machine.Go),
		html.EscapeString(r.Machine.Load), html.EscapeString(r.LoadAfter), r.StartedAt.Format("2006-01-02 15:04 MST"))

	b.WriteString("<table><tr><th>label</th><th>target</th><th>operation</th><th>batch</th><th>conc</th><th>req/s</th><th>fields/s</th>" +
		"<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>errors</th></tr>\n")
	for _, x := range r.Results {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			html.EscapeString(x.Label), x.Target, html.EscapeString(x.Operation), x.BatchSize, x.Concurrency,
			fmtNum(x.RequestsPerSec), fmtNum(x.FieldsPerSec), fmtMs(x.Latency.P50Ms), fmtMs(x.Latency.P90Ms),
			fmtMs(x.Latency.P99Ms), fmtMs(x.Latency.P999Ms), fmtMs(x.Latency.MaxMs), html.EscapeString(fmtErrors(x.Errors)))
	}
	b.WriteString("</table>\n")

	// Latency by percentile.
	var dist []line
	xMax := 3.0
	for i, x := range r.Results {
		l := line{name: x.Label, color: palette[i%len(palette)], dashed: x.Target == "transit"}
		for _, p := range x.Distribution {
			if p.Quantile >= 1 {
				continue
			}
			if x.Latency.Count > 0 && p.Quantile > 1-1/float64(x.Latency.Count) {
				continue // beyond what the sample size resolves
			}
			l.xs = append(l.xs, percentileX(p.Quantile))
			l.ys = append(l.ys, p.Ms)
			xMax = math.Max(xMax, math.Ceil(percentileX(p.Quantile)))
		}
		dist = append(dist, l)
	}
	pticks := []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}}
	b.WriteString("<div>")
	svgChart(&b, "Latency by percentile (successful requests)", "percentile", "latency (ms)", dist, 0, xMax, pticks, 0)
	b.WriteString("</div>\n")

	// Throughput and latency over time.
	useFields := false
	for _, x := range r.Results {
		useFields = useFields || x.BatchSize > 1
	}
	var thr, lat []line
	tMax, warm := 1.0, 0.0
	for i, x := range r.Results {
		c := palette[i%len(palette)]
		lt := line{name: x.Label, color: c, dashed: x.Target == "transit"}
		l99 := line{name: x.Label + " p99", color: c, dashed: x.Target == "transit"}
		for _, s := range x.Series {
			lt.xs = append(lt.xs, s.T)
			if useFields {
				lt.ys = append(lt.ys, s.FieldsPerSec)
			} else {
				lt.ys = append(lt.ys, s.RequestsPerSec)
			}
			l99.xs = append(l99.xs, s.T)
			l99.ys = append(l99.ys, s.P99Ms)
			tMax = math.Max(tMax, s.T)
		}
		warm = math.Max(warm, x.WarmupS)
		thr = append(thr, lt)
		lat = append(lat, l99)
	}
	var tticks []tick
	step := niceMax(tMax / 8)
	for t := 0.0; t <= tMax; t += step {
		tticks = append(tticks, tick{t, fmtTick(t)})
	}
	unit := "requests/s"
	if useFields {
		unit = "fields/s"
	}
	b.WriteString("<div>")
	svgChart(&b, "Throughput over time ("+unit+", per interval)", "seconds since start (warm-up shaded)", unit, thr, 0, tMax, tticks, warm)
	b.WriteString("</div>\n<div>")
	svgChart(&b, "p99 latency over time (per interval)", "seconds since start (warm-up shaded)", "p99 (ms)", lat, 0, tMax, tticks, warm)
	b.WriteString("</div>\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "<p>note: %s</p>\n", html.EscapeString(n))
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// WritePlot writes the plot to path.
func (r *Report) WritePlot(path string) error {
	return os.WriteFile(path, []byte(PlotHTML(r)), 0o644)
}
