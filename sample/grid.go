package sample

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

// Grid lays n images of c×h×w values (in [0,1], (N,C,H,W) order) out on a
// ⌈√n⌉-wide grid with a 2-pixel border. One channel gives a grey image,
// three an RGB one.
func Grid(images []float64, n, c, h, w int) (image.Image, error) {
	return GridCols(images, n, int(math.Ceil(math.Sqrt(float64(n)))), c, h, w)
}

// GridSize is the width and height in pixels of GridCols' grid of n h×w
// images, cols a row (0: ⌈√n⌉, as Grid).
func GridSize(n, cols, h, w int) (width, height int) {
	if cols < 1 {
		cols = max(1, int(math.Ceil(math.Sqrt(float64(n))))) // n 0: it divided by zero
	}
	rows := (n + cols - 1) / cols
	return cols*(w+gridPad) + gridPad, rows*(h+gridPad) + gridPad
}

// gridPad is the border between a grid's images, in pixels.
const gridPad = 2

// GridCols is Grid with cols images per row.
func GridCols(images []float64, n, cols, c, h, w int) (image.Image, error) {
	if n < 1 || h < 1 || w < 1 || len(images) != n*c*h*w { // −8×−8 passed as 64
		return nil, fmt.Errorf("sample: %d values for %d images of %d×%d×%d", len(images), n, c, h, w)
	}
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("sample: %d channels; a grid needs 1 or 3", c)
	}
	if cols < 1 {
		return nil, fmt.Errorf("sample: %d columns", cols)
	}
	W, H := GridSize(n, cols, h, w)
	var img image.Image
	var set func(x, y int, v []float64)
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, W, H))
		set = func(x, y int, v []float64) { g.SetGray(x, y, color.Gray{Y: toByte(v[0])}) }
		img = g
	} else {
		g := image.NewRGBA(image.Rect(0, 0, W, H))
		for i := range g.Pix {
			g.Pix[i] = 0
			if i%4 == 3 {
				g.Pix[i] = 255
			}
		}
		set = func(x, y int, v []float64) {
			g.SetRGBA(x, y, color.RGBA{toByte(v[0]), toByte(v[1]), toByte(v[2]), 255})
		}
		img = g
	}
	v := make([]float64, c)
	hw := h * w
	for k := 0; k < n; k++ {
		ox, oy := gridPad+(k%cols)*(w+gridPad), gridPad+(k/cols)*(h+gridPad)
		im := images[k*c*hw : (k+1)*c*hw]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for ch := 0; ch < c; ch++ {
					v[ch] = im[ch*hw+y*w+x]
				}
				set(ox+x, oy+y, v)
			}
		}
	}
	return img, nil
}

// WritePNG encodes img with the standard library's PNG encoder.
func WritePNG(w io.Writer, img image.Image) error { return png.Encode(w, img) }

// toByte clamps v to [0,1] and rounds it to 8 bits.
func toByte(v float64) uint8 {
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= 1:
		return 255
	}
	return uint8(math.Round(v * 255))
}
