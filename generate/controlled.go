package generate

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // inputs may be JPEG too
	"image/png"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/sample"
)

// MaskNames are the built-in masks of Config.Mask: each names the part of
// the image that is missing and that the model fills in.
var MaskNames = []string{"top", "bottom", "left", "right", "centre", "random"}

// constraint builds the constraint of an inpainting or colourisation run
// (nil for plain sampling) and the tiles shown before the samples in the
// grid: the input with its missing part grey, and the mask.
func constraint(st *checkpoint.State, c Config) (sample.Constraint, []float64, error) {
	if c.Inpaint == "" && c.Colorize == "" {
		if c.Mask != "" {
			return nil, nil, fmt.Errorf("%w: -mask goes with -inpaint", ErrConfig)
		}
		return nil, nil, nil
	}
	if c.Inpaint != "" && c.Colorize != "" {
		return nil, nil, fmt.Errorf("%w: -inpaint and -colorize are one at a time", ErrConfig)
	}
	if c.Colorize != "" && c.Mask != "" {
		return nil, nil, fmt.Errorf("%w: -mask goes with -inpaint; -colorize keeps the grey of the whole image", ErrConfig)
	}
	m := st.Model
	hw, d := m.Height*m.Width, m.Dim()
	if c.Colorize != "" {
		if m.Channels != 3 {
			return nil, nil, fmt.Errorf("%w: -colorize needs a colour model; this one has %d channel", ErrConfig, m.Channels)
		}
		img, clear, err := input(c.Colorize, "-colorize", st, c, 3)
		if err != nil {
			return nil, nil, err
		}
		if j := slices.Index(clear, true); j >= 0 { // every pixel's grey is kept
			return nil, nil, transparent("-colorize", c.Colorize, j, m.Width)
		}
		g := sample.Grey{Grey: make([]float64, hw), Unit: true}
		tile := make([]float64, d)
		for j := 0; j < hw; j++ {
			g.Grey[j] = (img[j] + img[hw+j] + img[2*hw+j]) / 3
			tile[j], tile[hw+j], tile[2*hw+j] = g.Grey[j], g.Grey[j], g.Grey[j]
		}
		return g, tile, nil
	}
	if c.Mask == "" {
		return nil, nil, fmt.Errorf("%w: -inpaint needs -mask (a PNG, white = keep, or %s: the part to fill in)", ErrConfig, strings.Join(MaskNames, ", "))
	}
	img, clear, err := input(c.Inpaint, "-inpaint", st, c, m.Channels)
	if err != nil {
		return nil, nil, err
	}
	keep, err := mask(c.Mask, m.Height, m.Width, c.Seed)
	if err != nil {
		return nil, nil, err
	}
	for j := range clear {
		// A transparent pixel read as black whatever its colour: a black
		// stroke on a transparent page vanished. One the model fills in
		// (an erased part) is no matter.
		if clear[j] && keep[j] {
			return nil, nil, transparent("-inpaint", c.Inpaint, j, m.Width)
		}
	}
	k := sample.Known{Mask: make([]bool, d), Value: img}
	tiles := make([]float64, 2*d)
	for ch := 0; ch < m.Channels; ch++ {
		for j := 0; j < hw; j++ {
			i := ch*hw + j
			k.Mask[i] = keep[j]
			tiles[i], tiles[d+i] = 0.5, 0
			if keep[j] {
				tiles[i], tiles[d+i] = img[i], 1
			}
		}
	}
	return k, tiles, nil
}

// transparent is the error for the transparent pixel j of an input, in
// rows of w.
func transparent(flag, spec string, j, w int) error {
	return fmt.Errorf("%w: %s %s has transparent pixels where the input is kept (at %d,%d): flatten it onto its background first", ErrConfig, flag, spec, j%w, j/w)
}

// input reads "test:N" (test image N of the model's dataset) or an image
// file of the model's size, as c channels in [0, 1], and which of its
// pixels are not opaque (nil for none), whose values are black.
func input(spec, flag string, st *checkpoint.State, c Config, channels int) (_ []float64, clear []bool, _ error) {
	m := st.Model
	if n, ok := strings.CutPrefix(spec, "test:"); ok {
		i, err := strconv.Atoi(n)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s %s: want test:N with N a number", ErrConfig, flag, spec)
		}
		if _, folder := data.IsFolder(st.Dataset); folder {
			return nil, nil, fmt.Errorf("%w: %s test:N takes a test image of a built-in dataset; this model was trained on %s (give an image file)", ErrConfig, flag, st.Dataset)
		}
		dir := c.DataDir
		if dir == "" {
			dir = filepath.Join("data", st.Dataset)
		}
		test, err := data.Load(st.Dataset, data.Options{Dir: dir, Log: c.Log}, "test")
		if err != nil {
			return nil, nil, err
		}
		if i < 0 || i >= test.N {
			return nil, nil, fmt.Errorf("%w: %s %s: the %s test set has images 0 to %d", ErrConfig, flag, spec, st.Dataset, test.N-1)
		}
		if test.Channels != m.Channels && !(flag == "-colorize" && test.Channels == 3) || test.Height != m.Height || test.Width != m.Width {
			return nil, nil, fmt.Errorf("%w: %s %s: the %s test images are %d×%d×%d, the model's %d×%d×%d", ErrConfig, flag, spec, st.Dataset,
				test.Channels, test.Height, test.Width, m.Channels, m.Height, m.Width)
		}
		out := make([]float64, test.Dim())
		for j, v := range test.Image(i) {
			out[j] = float64(v)
		}
		return out, nil, nil
	}
	f, err := fsutil.OpenRegular(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("generate: %s: %w", flag, err)
	}
	defer f.Close()
	// The declared size first: a small PNG that declares 60000×60000
	// pixels ran the decoder out of memory.
	cfg, format, err := image.DecodeConfig(f)
	if errors.Is(err, image.ErrFormat) {
		return nil, nil, fmt.Errorf("%w: %s %s is not a PNG, JPEG or GIF image", ErrConfig, flag, spec)
	} else if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %s: %v", ErrConfig, flag, spec, err)
	} else if cfg.Width != m.Width || cfg.Height != m.Height {
		return nil, nil, fmt.Errorf("%w: %s %s is %d×%d; the model draws %d×%d images", ErrConfig, flag, spec, cfg.Width, cfg.Height, m.Width, m.Height)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("generate: %s: %w", flag, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %s: %v", ErrConfig, flag, spec, err)
	}
	if format == "gif" { // its first frame may cover part of its screen only
		img = data.OnScreen(img, cfg.Width, cfg.Height)
	}
	b := img.Bounds()
	if b.Dx() != m.Width || b.Dy() != m.Height {
		return nil, nil, fmt.Errorf("%w: %s %s is %d×%d; the model draws %d×%d images", ErrConfig, flag, spec, b.Dx(), b.Dy(), m.Width, m.Height)
	}
	hw := m.Height * m.Width
	out := make([]float64, channels*hw)
	colour := false
	for y := 0; y < m.Height; y++ {
		for x := 0; x < m.Width; x++ {
			r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			if a != 0xffff {
				if clear == nil {
					clear = make([]bool, hw)
				}
				clear[y*m.Width+x] = true
			}
			rf, gf, bf := float64(r)/0xffff, float64(g)/0xffff, float64(bl)/0xffff
			if rf != gf || gf != bf {
				colour = true
			}
			j := y*m.Width + x
			if channels == 1 {
				out[j] = rf // grey (a colour input is refused below)
			} else {
				out[j], out[hw+j], out[2*hw+j] = rf, gf, bf
			}
		}
	}
	if channels == 1 && colour && flag == "-inpaint" {
		return nil, nil, fmt.Errorf("%w: -inpaint %s is a colour image; this model draws grey ones", ErrConfig, spec)
	}
	if channels == 3 && !colour && flag == "-inpaint" {
		fmt.Fprintf(c.logw(), "note: -inpaint %s is grey; its known pixels stay grey\n", spec)
	}
	return out, clear, nil
}

// mask reads a mask: a named part to fill in, or a PNG (white = keep).
func mask(spec string, h, w int, seed uint64) ([]bool, error) {
	keep := make([]bool, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var hole bool
			switch spec {
			case "top":
				hole = y < h/2
			case "bottom":
				hole = y >= h/2
			case "left":
				hole = x < w/2
			case "right":
				hole = x >= w/2
			case "centre", "center":
				hole = y >= h/4 && y < h-h/4 && x >= w/4 && x < w-w/4
			case "random":
				continue
			default:
				return pngMask(spec, h, w)
			}
			keep[y*w+x] = !hole
		}
	}
	if spec == "random" { // half the pixels, drawn from the seed
		r := rand.New(rand.NewPCG(seed, 0x6d61736b))
		for i := range keep {
			keep[i] = r.IntN(2) == 0
		}
	}
	return keep, nil
}

func pngMask(path string, h, w int) ([]bool, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("%w: -mask %s: not one of %s, nor a readable file (%v)", ErrConfig, path, strings.Join(MaskNames, ", "), err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil {
		return nil, fmt.Errorf("%w: -mask %s: %v", ErrConfig, path, err)
	} else if cfg.Width != w || cfg.Height != h {
		return nil, fmt.Errorf("%w: -mask %s is %d×%d; the model draws %d×%d images", ErrConfig, path, cfg.Width, cfg.Height, w, h)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("generate: -mask: %w", err)
	}
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%w: -mask %s: %v", ErrConfig, path, err)
	}
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		return nil, fmt.Errorf("%w: -mask %s is %d×%d; the model draws %d×%d images", ErrConfig, path, b.Dx(), b.Dy(), w, h)
	}
	keep := make([]bool, h*w)
	holes := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Premultiplied: a transparent pixel is black, a hole to fill
			// in (an erased part), whatever its colour.
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			keep[y*w+x] = (r+g+bl)/3 >= 0x8000
			if !keep[y*w+x] {
				holes++
			}
		}
	}
	switch holes {
	case 0:
		return nil, fmt.Errorf("%w: -mask %s is white everywhere: nothing to fill in", ErrConfig, path)
	case h * w:
		return nil, fmt.Errorf("%w: -mask %s is black everywhere: nothing of the input is kept (for plain samples leave out -inpaint and -mask)", ErrConfig, path)
	}
	return keep, nil
}
