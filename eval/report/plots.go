package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette/brewer"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colours of the Tableau 10 palette, for runs and classes; beyond ten the
// cycle repeats with a dashed line or a different glyph shape.
var tab10 = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
}

// Curve axes: metrics.jsonl keys and how they are labelled.
var axisLabels = map[string]string{
	"images_seen":     "images seen",
	"elapsed_s":       "wall time (s)",
	"step":            "step",
	"epoch":           "epoch",
	"loss":            "training loss",
	"pretext_acc":     "pretext accuracy (training batch)",
	"val_pretext_acc": "held-out pretext accuracy",
	"knn_top1":        "kNN top-1 accuracy",
	"lr":              "learning rate",
}

func labelOf(key string) string {
	if l, ok := axisLabels[key]; ok {
		return l
	}
	return strings.ReplaceAll(key, "_", " ")
}

// CurveMetrics returns the metrics TrainingCurves plots when present, one row of
// panels each.
func CurveMetrics() []string { return []string{"loss", "pretext_acc", "knn_top1"} }

// TrainingCurves draws, for each metric of CurveMetrics present in some run,
// one row of two panels, the metric against images seen and against wall
// time, with one line per run (overlaid, with a legend), and writes the
// figure as a PNG to path. A run's held-out value of a metric (for
// pretext_acc: val_pretext_acc) is marked at its last point. It returns the
// metrics drawn.
func TrainingCurves(runs []*Run, path string) ([]string, error) {
	var metrics []string
	for _, m := range CurveMetrics() {
		for _, r := range runs {
			if xs, _ := r.Series("images_seen", m); len(xs) > 0 {
				metrics = append(metrics, m)
				break
			}
		}
	}
	if len(metrics) == 0 {
		return nil, fmt.Errorf("report: training curves: no run has any of %v against images_seen", CurveMetrics())
	}
	xKeys := []string{"images_seen", "elapsed_s"}
	plots := make([][]*plot.Plot, len(metrics))
	for i, m := range metrics {
		plots[i] = make([]*plot.Plot, len(xKeys))
		for j, xk := range xKeys {
			p := newPlot(fmt.Sprintf("%s vs %s", labelOf(m), labelOf(xk)), labelOf(xk), labelOf(m))
			for ri, r := range runs {
				xs, ys := r.Series(xk, m)
				if len(xs) == 0 {
					continue
				}
				l, err := plotter.NewLine(xyOf(xs, ys))
				if err != nil {
					return nil, fmt.Errorf("report: training curves: run %s: %w", r.Name, err)
				}
				l.Color = tab10[ri%len(tab10)]
				l.Width = vg.Points(1.5)
				if ri >= len(tab10) {
					l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
				}
				p.Add(l)
				if len(xs) <= 30 {
					// Few measurements (checkpoints): mark each one.
					s, err := plotter.NewScatter(xyOf(xs, ys))
					if err != nil {
						return nil, err
					}
					s.GlyphStyle = draw.GlyphStyle{Color: l.Color, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
					p.Add(s)
					p.Legend.Add(r.Name, l, s)
				} else {
					p.Legend.Add(r.Name, l)
				}
				if m == "pretext_acc" {
					if v, ok := r.Final["val_pretext_acc"]; ok {
						s, err := plotter.NewScatter(plotter.XYs{{X: xs[len(xs)-1], Y: v}})
						if err != nil {
							return nil, err
						}
						s.GlyphStyle = draw.GlyphStyle{Color: l.Color, Radius: vg.Points(4), Shape: draw.PyramidGlyph{}}
						p.Add(s)
						if ri == 0 {
							p.Legend.Add("held-out (end)", s)
						}
					}
				}
			}
			if strings.HasSuffix(m, "acc") || strings.HasSuffix(m, "top1") {
				// Accuracies rise: axis 0..1, legend at the bottom right.
				p.Y.Min, p.Y.Max = math.Min(p.Y.Min, 0), math.Max(p.Y.Max, 1)
				p.Legend.Top = false
			}
			plots[i][j] = p
		}
	}
	w, h := vg.Points(440*float64(len(xKeys))), vg.Points(300*float64(len(metrics)))
	return metrics, saveGrid(plots, w, h, path)
}

// newPlot makes a plot with a title, axis labels, a grid and a legend in
// the top right corner.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.X.Tick.Marker = compactTicks{}
	p.Y.Tick.Marker = compactTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// compactTicks are plot's default ticks labelled without trailing zeros,
// and in thousands ("k") or millions ("M") when the axis reaches 10^4 or
// 10^6: 2500, 7500, 12500 -> 2.5k, 7.5k, 12.5k.
type compactTicks struct{}

func (compactTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	var top float64
	for _, t := range ticks {
		top = math.Max(top, math.Abs(t.Value))
	}
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = compactNumber(ticks[i].Value, top)
		}
	}
	return ticks
}

// compactNumber formats v with at most 4 significant digits, in millions
// ("M") when scale >= 10^6 and thousands ("k") when scale >= 10^4.
func compactNumber(v, scale float64) string {
	switch {
	case math.Abs(v) < 1e-12*math.Max(1, scale):
		return "0"
	case scale >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case scale >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func xyOf(xs, ys []float64) plotter.XYs {
	pts := make(plotter.XYs, len(xs))
	for i := range xs {
		pts[i].X, pts[i].Y = xs[i], ys[i]
	}
	return pts
}

// saveGrid draws plots (rows of panels) on one w x h canvas and writes it
// as a PNG at 96 dpi.
func saveGrid(plots [][]*plot.Plot, w, h vg.Length, path string) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	t := draw.Tiles{
		Rows: len(plots), Cols: len(plots[0]),
		PadX: vg.Points(24), PadY: vg.Points(24),
		PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(12),
	}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		for j := range plots[i] {
			if plots[i][j] != nil {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}
	return writePNG(img, path)
}

func writePNG(img *vgimg.Canvas, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("report: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: writing %s: %w", path, err)
	}
	return nil
}

// confusionGrid adapts a row-normalised confusion matrix to plotter.GridXYZ:
// column c is the predicted class, row r (from the bottom) the true class
// k-1-r, so that the first class is at the top.
type confusionGrid struct {
	frac [][]float64
}

func (g confusionGrid) Dims() (c, r int)      { return len(g.frac), len(g.frac) }
func (g confusionGrid) Z(c, r int) float64    { return g.frac[len(g.frac)-1-r][c] }
func (g confusionGrid) X(c int) float64       { return float64(c) }
func (g confusionGrid) Y(r int) float64       { return float64(r) }
func (g confusionGrid) rows() int             { return len(g.frac) }
func (g confusionGrid) trueClassOf(r int) int { return len(g.frac) - 1 - r }

// ConfusionMatrix draws conf (conf[t][p]: rows of true class t predicted as
// p) as a heat map of row-normalised fractions (the recall of each class on
// the diagonal), with the count and percentage written in every cell of up
// to 20 classes, and writes it as a PNG to path.
func ConfusionMatrix(conf [][]int, classes []string, title, path string) error {
	k := len(conf)
	if k == 0 {
		return fmt.Errorf("report: confusion matrix: empty")
	}
	if len(classes) != k {
		classes = make([]string, k)
		for i := range classes {
			classes[i] = fmt.Sprint(i)
		}
	}
	frac := make([][]float64, k)
	for t, row := range conf {
		if len(row) != k {
			return fmt.Errorf("report: confusion matrix: row %d has %d entries, want %d", t, len(row), k)
		}
		total := 0
		for _, v := range row {
			total += v
		}
		frac[t] = make([]float64, k)
		for p, v := range row {
			if total > 0 {
				frac[t][p] = float64(v) / float64(total)
			}
		}
	}
	g := confusionGrid{frac}
	pal, err := brewer.GetPalette(brewer.TypeSequential, "Blues", 9)
	if err != nil {
		return fmt.Errorf("report: confusion matrix: %w", err)
	}
	hm := plotter.NewHeatMap(g, pal)
	hm.Min, hm.Max = 0, 1
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	p.Add(hm)
	names := make([]string, k)
	for r := 0; r < k; r++ {
		names[r] = classes[g.trueClassOf(r)]
	}
	p.NominalX(classes...)
	p.NominalY(names...)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	if k <= 20 {
		var dark, light plotter.XYLabels
		for r := 0; r < g.rows(); r++ {
			t := g.trueClassOf(r)
			for c := 0; c < k; c++ {
				lbl := fmt.Sprintf("%d\n%.0f%%", conf[t][c], 100*frac[t][c])
				xy := plotter.XY{X: float64(c), Y: float64(r)}
				if frac[t][c] > 0.55 {
					light.XYs, light.Labels = append(light.XYs, xy), append(light.Labels, lbl)
				} else {
					dark.XYs, dark.Labels = append(dark.XYs, xy), append(dark.Labels, lbl)
				}
			}
		}
		size := vg.Points(math.Max(6, math.Min(10, 100/float64(k))))
		for _, set := range []struct {
			l   plotter.XYLabels
			clr color.Color
		}{{dark, color.Black}, {light, color.White}} {
			if len(set.l.XYs) == 0 {
				continue
			}
			labels, err := plotter.NewLabels(set.l)
			if err != nil {
				return fmt.Errorf("report: confusion matrix: %w", err)
			}
			for i := range labels.TextStyle {
				labels.TextStyle[i].Color = set.clr
				labels.TextStyle[i].Font.Size = size
				labels.TextStyle[i].XAlign = draw.XCenter
				labels.TextStyle[i].YAlign = draw.YCenter
			}
			p.Add(labels)
		}
	}
	side := vg.Points(math.Max(380, math.Min(900, 56*float64(k)+160)))
	return saveGrid([][]*plot.Plot{{p}}, side, side, path)
}

// Scatter draws 2-D points (xy: [n, 2], row-major) coloured by class
// (labels in [0, len(classes))), one legend entry per class, and writes the
// figure as a PNG to path.
func Scatter(xy []float64, labels []int, classes []string, title, xLabel, yLabel, path string) error {
	n := len(labels)
	if len(xy) != 2*n || n == 0 {
		return fmt.Errorf("report: scatter: %d coordinates for %d labels, want 2 per label", len(xy), n)
	}
	byClass := make([]plotter.XYs, len(classes))
	for i, c := range labels {
		if c < 0 || c >= len(classes) {
			return fmt.Errorf("report: scatter: label %d of point %d outside [0, %d)", c, i, len(classes))
		}
		byClass[c] = append(byClass[c], plotter.XY{X: xy[2*i], Y: xy[2*i+1]})
	}
	p := newPlot(title, xLabel, yLabel)
	p.Legend.Left = false
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}}
	for c, pts := range byClass {
		if len(pts) == 0 {
			continue
		}
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return fmt.Errorf("report: scatter: class %s: %w", classes[c], err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: tab10[c%len(tab10)], Radius: vg.Points(2.2), Shape: shapes[(c/len(tab10))%len(shapes)]}
		p.Add(s)
		p.Legend.Add(classes[c], s)
	}
	// Room on the right for the legend.
	p.X.Max += 0.3 * (p.X.Max - p.X.Min)
	return saveGrid([][]*plot.Plot{{p}}, vg.Points(640), vg.Points(520), path)
}

// NeighbourRow is one row of a nearest-neighbour grid: a query image and
// its nearest neighbours, most similar first.
type NeighbourRow struct {
	Query      image.Image
	QueryLabel string
	Neighbours []image.Image
	Labels     []string  // class names of the neighbours
	Same       []bool    // whether each neighbour has the query's class
	Similarity []float32 // cosine similarity of each neighbour to the query
}

// NeighbourGrid draws one row per query: the query image, then its
// neighbours, each enlarged to cell x cell pixels (nearest-neighbour
// scaling) with its class name and similarity below it, framed green when
// its class is the query's and red otherwise; the query is framed blue. It
// writes a PNG to path.
func NeighbourGrid(rows []NeighbourRow, title string, cell int, path string) error {
	if len(rows) == 0 {
		return fmt.Errorf("report: neighbour grid: no rows")
	}
	if cell < 16 {
		cell = 16
	}
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r.Neighbours))
		if r.Query == nil || len(r.Labels) != len(r.Neighbours) || len(r.Same) != len(r.Neighbours) || len(r.Similarity) != len(r.Neighbours) {
			return fmt.Errorf("report: neighbour grid: a row has %d neighbours, %d labels, %d flags and %d similarities", len(r.Neighbours), len(r.Labels), len(r.Same), len(r.Similarity))
		}
	}
	const (
		pad    = 6
		textH  = 28 // two lines under each image
		titleH = 30
		headH  = 18
		gap    = 18 // between the query column and the neighbours
		frame  = 3
	)
	txt := func(size float64, clr color.Color, xa text.XAlignment) draw.TextStyle {
		return draw.TextStyle{Color: clr, Font: font.From(plot.DefaultFont, vg.Length(size)), XAlign: xa, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	}
	header := "nearest neighbours in feature space, most similar first (green frame: same class as the query, red: other class)"
	cw, ch := cell+2*pad, cell+textH+2*pad
	W := cw*(cols+1) + gap + 2*pad
	W = max(W, int(txt(15, color.Black, draw.XLeft).Width(title))+2*pad+2, pad+cw+gap+pad+int(txt(11, color.Black, draw.XLeft).Width(header))+pad+2)
	H := titleH + headH + ch*len(rows) + pad
	// At 72 dpi one point is one pixel.
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(W), vg.Length(H)), vgimg.UseDPI(72), vgimg.UseBackgroundColor(color.White))
	c := draw.New(img)
	// Canvas y runs upwards; top(y) converts from a top-left origin.
	top := func(y int) vg.Length { return vg.Length(H - y) }
	c.FillText(txt(15, color.Black, draw.XLeft), vg.Point{X: pad, Y: top(6)}, title)
	c.FillText(txt(11, color.Gray{80}, draw.XCenter), vg.Point{X: vg.Length(pad + cw/2), Y: top(titleH)}, "query")
	c.FillText(txt(11, color.Gray{80}, draw.XLeft), vg.Point{X: vg.Length(pad + cw + gap + pad), Y: top(titleH)}, header)
	green, red, blue := color.RGBA{30, 160, 60, 255}, color.RGBA{210, 40, 40, 255}, color.RGBA{40, 90, 200, 255}
	cellAt := func(im image.Image, x, y int, border color.Color, label, label2 string, labelColor color.Color) {
		// Frame, then the image, then the label below.
		fx, fy := x+pad-frame, y+pad-frame
		fs := cell + 2*frame
		c.FillPolygon(border, []vg.Point{
			{X: vg.Length(fx), Y: top(fy)}, {X: vg.Length(fx + fs), Y: top(fy)},
			{X: vg.Length(fx + fs), Y: top(fy + fs)}, {X: vg.Length(fx), Y: top(fy + fs)},
		})
		big := upscale(im, cell)
		img.DrawImage(vg.Rectangle{Min: vg.Point{X: vg.Length(x + pad), Y: top(y + pad + cell)}, Max: vg.Point{X: vg.Length(x + pad + cell), Y: top(y + pad)}}, big)
		c.FillText(txt(10, labelColor, draw.XCenter), vg.Point{X: vg.Length(x + pad + cell/2), Y: top(y + pad + cell + frame + 1)}, label)
		if label2 != "" {
			c.FillText(txt(10, labelColor, draw.XCenter), vg.Point{X: vg.Length(x + pad + cell/2), Y: top(y + pad + cell + frame + 14)}, label2)
		}
	}
	for i, r := range rows {
		y := titleH + headH + i*ch
		cellAt(r.Query, pad, y, blue, shorten(r.QueryLabel, 12), "", color.Black)
		for j, nb := range r.Neighbours {
			border, lc := red, red
			if r.Same[j] {
				border, lc = green, color.RGBA{0, 110, 30, 255}
			}
			cellAt(nb, pad+cw+gap+j*cw, y, border, shorten(r.Labels[j], 12), fmt.Sprintf("sim %.3f", r.Similarity[j]), lc)
		}
	}
	return writePNG(img, path)
}

func shorten(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "."
}

// upscale resizes im to size x size pixels by nearest-neighbour sampling,
// so that small images stay crisp.
func upscale(im image.Image, size int) image.Image {
	b := im.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		sy := b.Min.Y + y*b.Dy()/size
		for x := 0; x < size; x++ {
			out.Set(x, y, im.At(b.Min.X+x*b.Dx()/size, sy))
		}
	}
	return out
}

// relTo is path relative to dir when possible, for Markdown links.
func relTo(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil {
		return filepath.ToSlash(rel)
	}
	return path
}
