package generate

import (
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"io"
	"math"

	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/sample"
)

// film collects grid frames for an animated GIF.
type film struct {
	c, h, w int
	cols    int // per row (0: ⌈√n⌉)
	g       gif.GIF
	pal     color.Palette
}

func newFilm(c, h, w, cols int) *film {
	f := &film{c: c, h: h, w: w, cols: cols}
	if c == 1 {
		f.pal = make(color.Palette, 256)
		for i := range f.pal {
			f.pal[i] = color.Gray{Y: uint8(i)}
		}
	} else {
		f.pal = palette.Plan9
	}
	return f
}

// add records the current samples (clamped to [0,1]) for delay/100 s.
func (f *film) add(x []float64, n, delay int) {
	cols := f.cols
	if cols == 0 {
		cols = int(math.Ceil(math.Sqrt(float64(n))))
	}
	img, err := sample.GridCols(clamped(x), n, cols, f.c, f.h, f.w)
	if err != nil {
		return
	}
	p := image.NewPaletted(img.Bounds(), f.pal)
	if f.c == 1 {
		draw.Draw(p, p.Rect, img, image.Point{}, draw.Src) // exact: 256 greys
	} else {
		draw.FloydSteinberg.Draw(p, p.Rect, img, image.Point{})
	}
	f.g.Image = append(f.g.Image, p)
	f.g.Delay = append(f.g.Delay, delay)
}

func clamped(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = min(1, max(0, v))
	}
	return out
}

// encode writes the film as an animated GIF.
func (f *film) encode(w io.Writer) error { return gif.EncodeAll(w, &f.g) }

func (f *film) write(path string) error {
	if err := fsutil.WriteAtomic(path, f.encode); err != nil {
		return fmt.Errorf("generate: writing %s: %w", path, err)
	}
	return nil
}
