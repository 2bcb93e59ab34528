package generate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
)

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadLatest(t *testing.T, dir string) *checkpoint.State {
	t.Helper()
	p, err := checkpoint.Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Inpainting: with every stochastic sampler (heun with churn among them) the kept pixels of every
// completion equal the input exactly, the rest differ between completions;
// the grid starts with the input and the mask. Colourisation: every
// completion's grey level (R+G+B)/3 equals the input's, in [0, 1].
func TestInpaintAndColorize(t *testing.T) {
	dir := t.TempDir()
	in := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range in.Pix {
		in.Pix[i] = uint8(37 * i)
	}
	inPath := filepath.Join(dir, "in.png")
	writePNG(t, inPath, in)
	for _, c := range []struct {
		process, sampler string
		churn            float64
	}{{"ncsn", "ald", 0}, {"vp", "pc", 0}, {"vp", "ddpm", 0}, {"ve", "em", 0}, {"ve", "heun", 20}} {
		ck, _ := tinyRun(t, c.process)
		st := loadLatest(t, ck)
		for _, m := range []string{"bottom", "random"} {
			res, err := Draw(st, onlyItsFlags(c.process, Config{N: 3, Seed: 1, StepsPerLevel: 2, Steps: 30, Denoise: true, Sampler: c.sampler, Churn: c.churn, Inpaint: inPath, Mask: m}))
			if err != nil {
				t.Fatalf("%s %s: %v", c.sampler, m, err)
			}
			keep, _ := mask(m, 8, 8, 1)
			differ := false
			for i := 0; i < 3; i++ {
				for j, k := range keep {
					v := res.Images[i*64+j]
					want := float64(uint32(in.Pix[j])*0x101) / 0xffff // as image.Color.RGBA gives it
					if k && v != want {
						t.Fatalf("%s %s: completion %d pixel %d = %g, input %g", c.sampler, m, i, j, v, want)
					}
					if !k && v != res.Images[j] {
						differ = true
					}
				}
			}
			if !differ {
				t.Errorf("%s %s: the completions are all the same", c.sampler, m)
			}
			if len(res.Tiles) != 2*64 || (m == "bottom" && (res.Tiles[63] != 0.5 || res.Tiles[64] != 1 || res.Tiles[127] != 0)) {
				t.Errorf("%s %s: tiles %d values", c.sampler, m, len(res.Tiles))
			}
		}
	}
	// Colour: a colourful input, of which only the grey levels count.
	col := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < 64; i++ {
		col.Set(i%8, i/8, color.RGBA{uint8(30 * i), uint8(255 - 3*i), uint8(9 * i), 255})
	}
	colPath := filepath.Join(dir, "col.png")
	writePNG(t, colPath, col)
	for _, c := range []struct{ process, sampler string }{{"ncsn", "ald"}, {"vp", "pc"}} {
		dir, _ := tinyRunOf(t, c.process, "cifar10", 3)
		st := loadLatest(t, dir)
		res, err := Draw(st, onlyItsFlags(c.process, Config{N: 4, Seed: 2, StepsPerLevel: 2, Steps: 30, Denoise: true, Sampler: c.sampler, Colorize: colPath}))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			for j := 0; j < 64; j++ {
				r8, g8, b8, _ := col.At(j%8, j/8).RGBA()
				want := (float64(r8) + float64(g8) + float64(b8)) / 3 / 0xffff
				px := res.Images[i*192:]
				got := (px[j] + px[64+j] + px[128+j]) / 3
				if math.Abs(got-want) > 1e-12 {
					t.Fatalf("%s: sample %d pixel %d grey %g, input %g", c.sampler, i, j, got, want)
				}
				for k := 0; k < 3; k++ {
					if v := px[k*64+j]; v < 0 || v > 1 {
						t.Fatalf("%s: value %g outside [0, 1]", c.sampler, v)
					}
				}
			}
		}
	}
}

// Bad inputs are one-line errors naming the flag.
func TestControlledErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.png")
	writePNG(t, big, image.NewGray(image.Rect(0, 0, 9, 8)))
	ok := filepath.Join(dir, "ok.png")
	writePNG(t, ok, image.NewGray(image.Rect(0, 0, 8, 8)))
	colour := filepath.Join(dir, "colour.png")
	c8 := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 3; i < len(c8.Pix); i += 4 {
		c8.Pix[i] = 255 // opaque black
	}
	c8.Set(1, 1, color.RGBA{200, 10, 10, 255})
	writePNG(t, colour, c8)
	white := filepath.Join(dir, "white.png")
	w8 := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range w8.Pix {
		w8.Pix[i] = 255
	}
	writePNG(t, white, w8)
	// A PNG of a few bytes that declares 60000×60000 16-bit RGBA pixels
	// (28 GB decoded: the decoder ran out of memory).
	bomb := filepath.Join(dir, "bomb.png")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 60000)
	binary.BigEndian.PutUint32(ihdr[4:], 60000)
	ihdr[8], ihdr[9] = 16, 6
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	for _, ch := range []struct {
		kind string
		data []byte
	}{{"IHDR", ihdr}, {"IDAT", []byte{0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1}}, {"IEND", nil}} {
		binary.Write(&b, binary.BigEndian, uint32(len(ch.data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(ch.kind))
		crc.Write(ch.data)
		b.WriteString(ch.kind)
		b.Write(ch.data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	os.WriteFile(bomb, b.Bytes(), 0o644)
	// A black stroke on a transparent white page: taken as it was, it was
	// all black (the stroke gone); as a mask, every pixel a hole.
	page := filepath.Join(dir, "page.png")
	p8 := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(p8.Pix); i += 4 {
		p8.Pix[i], p8.Pix[i+1], p8.Pix[i+2] = 255, 255, 255
	}
	p8.Set(3, 3, color.NRGBA{0, 0, 0, 255})
	writePNG(t, page, p8)
	black := filepath.Join(dir, "black.png")
	writePNG(t, black, image.NewGray(image.Rect(0, 0, 8, 8)))
	bmp := filepath.Join(dir, "x.bmp")
	os.WriteFile(bmp, []byte("BM\x3a\x00\x00\x00 not a PNG"), 0o644)
	// A GIF of an 8×8 screen whose first frame covers its top-left 4×4: it
	// was refused as 4×4.
	part := filepath.Join(dir, "part.gif")
	var g bytes.Buffer
	frame := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Gray{0}, color.Gray{255}})
	if err := gif.EncodeAll(&g, &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{ColorModel: frame.Palette, Width: 8, Height: 8}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(part, g.Bytes(), 0o644)
	ncsn, _ := tinyRun(t, "ncsn")
	vp, _ := tinyRun(t, "vp")
	ve, _ := tinyRun(t, "ve")
	for _, c := range []struct {
		ck   string
		cfg  Config
		want string
	}{
		{ncsn, Config{Inpaint: ok}, "-inpaint needs -mask"},
		{ncsn, Config{Mask: "top"}, "-mask goes with -inpaint"},
		{ncsn, Config{Mask: "top", Colorize: "test:0"}, "-mask goes with -inpaint; -colorize"},
		{ncsn, Config{Inpaint: big, Mask: "top"}, "is 9×8; the model draws 8×8"},
		{ncsn, Config{Inpaint: ok, Mask: big}, "-mask " + big + " is 9×8"},
		{ncsn, Config{Inpaint: bomb, Mask: "top"}, "is 60000×60000; the model draws 8×8"},
		{ncsn, Config{Inpaint: ok, Mask: bomb}, "-mask " + bomb + " is 60000×60000"},
		{ncsn, Config{Inpaint: ok, Mask: "diagonal"}, "not one of top, bottom"},
		{ncsn, Config{Inpaint: ok, Mask: white}, "white everywhere"},
		{ncsn, Config{Inpaint: ok, Mask: black}, "black everywhere: nothing of the input is kept"}, // plain samples, silently
		{ncsn, Config{Inpaint: page, Mask: "top"}, "-inpaint " + page + " has transparent pixels where the input is kept (at 0,4): flatten it"},
		{ncsn, Config{Inpaint: bmp, Mask: "top"}, "-inpaint " + bmp + " is not a PNG, JPEG or GIF image"},
		{ncsn, Config{Inpaint: part, Mask: "top"}, "-inpaint " + part + " has transparent pixels where the input is kept (at 0,4)"},
		{ncsn, Config{Inpaint: colour, Mask: "top"}, "is a colour image; this model draws grey ones"},
		{ncsn, Config{Inpaint: "test:x", Mask: "top"}, "want test:N"},
		{ncsn, Config{Colorize: ok}, "-colorize needs a colour model"},
		{ncsn, Config{Inpaint: ok, Colorize: ok, Mask: "top"}, "one at a time"},
		{vp, Config{Inpaint: ok, Mask: "top", Sampler: "ddim"}, "deterministic; -inpaint and -colorize need a stochastic one (for this vp model: em, pc or ddpm)"},
		{vp, Config{Inpaint: ok, Mask: "top", Sampler: "ode"}, "deterministic"},
		{ncsn, Config{Inpaint: ok, Mask: "top", Sampler: "heun"}, "needs a model trained in continuous time"},
		{ve, Config{Inpaint: ok, Mask: "top", Sampler: "heun"}, "heun with -churn"},
	} {
		c.cfg.N, c.cfg.StepsPerLevel, c.cfg.Steps = 2, 1, 10
		st := loadLatest(t, c.ck)
		c.cfg = onlyItsFlags(st.Process.Name, c.cfg)
		_, err := Draw(st, c.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want one line with %q", c.cfg, err, c.want)
		}
	}
	// Transparent where the model fills in (an erased bottom half, a
	// mask's transparent holes) is no matter: drawn as before.
	erased := filepath.Join(dir, "erased.png")
	e8 := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < 32*4; i += 4 {
		e8.Pix[i], e8.Pix[i+1], e8.Pix[i+2], e8.Pix[i+3] = 200, 200, 200, 255 // the top half opaque, the bottom transparent
	}
	writePNG(t, erased, e8)
	st := loadLatest(t, ncsn)
	for _, cfg := range []Config{{Inpaint: erased, Mask: "bottom"}, {Inpaint: ok, Mask: erased}} {
		cfg.N, cfg.StepsPerLevel = 2, 1
		if _, err := Draw(st, cfg); err != nil {
			t.Errorf("-inpaint %s -mask %s: %v", cfg.Inpaint, cfg.Mask, err)
		}
	}
}
