package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
)

// DefaultMaxPixels is the pixel limit of DecodeWith (and so of Decode,
// every reader of this package and the feature server) unless a caller
// sets another: 40 megapixels, which decodes in at most about 320 MB (a
// 16-bit RGBA PNG) and admits every camera photo up to 40 MP.
const DefaultMaxPixels = 40_000_000

// ErrTooLarge is wrapped by the error of DecodeWith when an image's header
// declares more pixels than the limit allows.
var ErrTooLarge = errors.New("image too large")

// DecodeOptions bounds and shapes DecodeWith.
type DecodeOptions struct {
	// MaxPixels is the most width x height pixels an image may declare in
	// its header; 0 means DefaultMaxPixels, a negative value no limit.
	MaxPixels int64
	// Channels converts to 1 (ITU-R BT.601 luma) or 3 channels; 0 keeps
	// the file's own (1 for grayscale, else 3).
	Channels int
	// Size resizes to Size x Size pixels (bilinear, antialiased when
	// shrinking, as Resize); 0 keeps the size.
	Size int
	// Shrink, when Size is 0, resizes an image whose shorter side exceeds
	// Shrink so that the shorter side is Shrink, keeping the aspect ratio
	// (as ResizeShorter); smaller images keep their size. 0: never.
	Shrink int
	// Crop, when not empty, cuts the decoded image to this rectangle (in
	// the pixel coordinates of the whole image, which must contain it)
	// before Size or Shrink apply: a tile of a large photograph.
	Crop image.Rectangle
}

func (o DecodeOptions) limit() int64 {
	if o.MaxPixels == 0 {
		return DefaultMaxPixels
	}
	return o.MaxPixels
}

// DecodeConfig reads only the header of a JPEG or PNG file and returns its
// width, height and format ("jpeg" or "png"). It fails, wrapping
// ErrTooLarge, when width x height exceeds maxPixels (0: DefaultMaxPixels,
// negative: no limit), and on a zero or negative dimension.
func DecodeConfig(b []byte, maxPixels int64) (w, h int, format string, err error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return 0, 0, "", err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, "", fmt.Errorf("%s image declares %d x %d pixels", format, cfg.Width, cfg.Height)
	}
	if maxPixels == 0 {
		maxPixels = DefaultMaxPixels
	}
	if maxPixels > 0 && int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return 0, 0, "", fmt.Errorf("%s image declares %d x %d = %.1f megapixels, over the limit of %d pixels (--max-pixels): %w",
			format, cfg.Width, cfg.Height, float64(cfg.Width)*float64(cfg.Height)/1e6, maxPixels, ErrTooLarge)
	}
	return cfg.Width, cfg.Height, format, nil
}

// DecodeWith decodes a JPEG or PNG file's bytes into an Image: it reads
// the header first and refuses an image over the pixel limit before
// allocating anything for it, then decodes and, when asked, converts the
// channels and resizes row by row from the decoded image, so that beside
// the decoder's own buffer it holds only the output and one intermediate
// of the output's width (never a full-size copy, never full-size floats).
// The result equals Decode followed by Convert's conversion and resize.
func DecodeWith(b []byte, o DecodeOptions) (Image, error) {
	if o.Channels != 0 && o.Channels != 1 && o.Channels != 3 {
		return Image{}, fmt.Errorf("data: decode: Channels must be 0, 1 or 3, got %d", o.Channels)
	}
	if o.Size < 0 || o.Shrink < 0 {
		return Image{}, fmt.Errorf("data: decode: Size and Shrink must be >= 0, got %d and %d", o.Size, o.Shrink)
	}
	w, h, _, err := DecodeConfig(b, o.limit())
	if err != nil {
		return Image{}, err
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return Image{}, err
	}
	if r := img.Bounds(); r.Dx() != w || r.Dy() != h {
		return Image{}, fmt.Errorf("data: decode: header says %d x %d, image is %d x %d", w, h, r.Dx(), r.Dy())
	}
	if !o.Crop.Empty() {
		full := image.Rect(0, 0, w, h)
		if !o.Crop.In(full) {
			return Image{}, fmt.Errorf("data: decode: crop %v is outside the %d x %d image", o.Crop, w, h)
		}
		sub, ok := img.(interface {
			SubImage(image.Rectangle) image.Image
		})
		if !ok {
			return Image{}, fmt.Errorf("data: decode: cannot crop a %T", img)
		}
		img = sub.SubImage(o.Crop.Add(img.Bounds().Min))
		w, h = o.Crop.Dx(), o.Crop.Dy()
	}
	oh, ow := h, w
	switch {
	case o.Size > 0:
		oh, ow = o.Size, o.Size
	case o.Shrink > 0 && min(h, w) > o.Shrink:
		if h <= w {
			oh, ow = o.Shrink, max(1, int(float64(o.Shrink)*float64(w)/float64(h)))
		} else {
			oh, ow = max(1, int(float64(o.Shrink)*float64(h)/float64(w))), o.Shrink
		}
	}
	c := stdChannels(img)
	rowC := c
	if o.Channels == 1 {
		rowC = 1 // luma is taken per row, at full resolution, as Convert does
	}
	var m Image
	if oh == h && ow == w {
		m = stdPlanes(img, rowC)
	} else {
		m = resizeStd(img, rowC, oh, ow)
	}
	if o.Channels == 3 && m.C == 1 {
		m, err = convertImage(m, 3, 0)
		if err != nil {
			return Image{}, err
		}
	}
	return m, nil
}

// stdChannels is 1 for grayscale standard images, else 3.
func stdChannels(img image.Image) int {
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		return 1
	}
	return 3
}

// stdPlanes converts a standard image to CHW uint8 with c channels (1 or
// the image's own).
func stdPlanes(img image.Image, c int) Image {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	out := Image{C: c, H: h, W: w, Pix: make([]uint8, c*h*w)}
	rows := make([][]uint8, c)
	for y := 0; y < h; y++ {
		for k := range rows {
			rows[k] = out.Pix[(k*h+y)*w : (k*h+y+1)*w]
		}
		stdRow(img, y, rows)
	}
	return out
}

// resizeStd resamples a standard image to oh x ow with c channels exactly
// as Resize(ToTensor(...)) followed by FromTensor would, one source row at
// a time: the intermediate is c x srcH x ow floats.
func resizeStd(img image.Image, c, oh, ow int) Image {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	xs, xw := resampleTaps(w, ow)
	ys, yw := resampleTaps(h, oh)
	tmp := make([]float32, c*h*ow)
	rows := make([][]uint8, c)
	line := make([]uint8, c*w)
	src := make([]float32, w)
	for k := range rows {
		rows[k] = line[k*w : (k+1)*w]
	}
	for y := 0; y < h; y++ {
		stdRow(img, y, rows)
		for k := 0; k < c; k++ {
			for x, v := range rows[k] {
				src[x] = float32(v) / 255
			}
			dst := tmp[(k*h+y)*ow : (k*h+y+1)*ow]
			for x := range dst {
				var s float32
				for j, wt := range xw[x] {
					s += wt * src[xs[x]+j]
				}
				dst[x] = s
			}
		}
	}
	out := Image{C: c, H: oh, W: ow, Pix: make([]uint8, c*oh*ow)}
	acc := make([]float32, ow)
	for k := 0; k < c; k++ {
		plane := tmp[k*h*ow : (k+1)*h*ow]
		for y := 0; y < oh; y++ {
			clear(acc)
			for j, wt := range yw[y] {
				row := plane[(ys[y]+j)*ow : (ys[y]+j+1)*ow]
				for x := range acc {
					acc[x] += wt * row[x]
				}
			}
			dst := out.Pix[(k*oh+y)*ow : (k*oh+y+1)*ow]
			for x, v := range acc {
				f := math.Round(255 * float64(v))
				switch {
				case f >= 255:
					dst[x] = 255
				case f > 0:
					dst[x] = uint8(f)
				default:
					dst[x] = 0
				}
			}
		}
	}
	return out
}

// stdRow writes row y (counted from the top of the bounds) of img into
// out: one slice of width pixels for each channel. With one slice it is
// gray (the file's gray, or ITU-R BT.601 luma of a colour image, rounded
// as Convert does); with three it is R, G, B, any alpha dropped as
// PIL's convert("RGB") does (translucent RGBA pixels un-premultiplied).
func stdRow(img image.Image, y int, out [][]uint8) {
	r := img.Bounds()
	w := r.Dx()
	yy := r.Min.Y + y
	if len(out) == 1 {
		switch m := img.(type) {
		case *image.Gray:
			i := m.PixOffset(r.Min.X, yy)
			copy(out[0], m.Pix[i:i+w])
			return
		case *image.Gray16:
			i := m.PixOffset(r.Min.X, yy)
			for x := 0; x < w; x++ {
				out[0][x] = m.Pix[i+2*x] // high byte, as Gray16 -> Gray
			}
			return
		}
		var rgb [3][]uint8
		for k := range rgb {
			rgb[k] = make([]uint8, w)
		}
		stdRow(img, y, rgb[:])
		for x := 0; x < w; x++ {
			v := lumaR*float64(rgb[0][x]) + lumaG*float64(rgb[1][x]) + lumaB*float64(rgb[2][x])
			out[0][x] = uint8(math.Min(255, math.Round(v)))
		}
		return
	}
	pr, pg, pb := out[0], out[1], out[2]
	switch m := img.(type) {
	case *image.Gray:
		i := m.PixOffset(r.Min.X, yy)
		copy(pr, m.Pix[i:i+w])
		copy(pg, pr)
		copy(pb, pr)
	case *image.YCbCr:
		for x := 0; x < w; x++ {
			yi := m.YOffset(r.Min.X+x, yy)
			ci := m.COffset(r.Min.X+x, yy)
			pr[x], pg[x], pb[x] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
		}
	case *image.NRGBA:
		i := m.PixOffset(r.Min.X, yy)
		for x := 0; x < w; x++ {
			pr[x], pg[x], pb[x] = m.Pix[i+4*x], m.Pix[i+4*x+1], m.Pix[i+4*x+2]
		}
	case *image.RGBA:
		i := m.PixOffset(r.Min.X, yy)
		for x := 0; x < w; x++ {
			if m.Pix[i+4*x+3] == 0xff {
				pr[x], pg[x], pb[x] = m.Pix[i+4*x], m.Pix[i+4*x+1], m.Pix[i+4*x+2]
			} else {
				c := color.NRGBAModel.Convert(m.At(r.Min.X+x, yy)).(color.NRGBA)
				pr[x], pg[x], pb[x] = c.R, c.G, c.B
			}
		}
	default:
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(r.Min.X+x, yy)).(color.NRGBA)
			pr[x], pg[x], pb[x] = c.R, c.G, c.B
		}
	}
}
