package plot

import (
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCurves(t *testing.T) {
	dir := t.TempDir()
	csv := "step,loss,images_per_s,elapsed_s,loss_sigma_1,loss_sigma_0.1\n"
	for s := 1; s <= 50; s++ {
		csv += strings.Join([]string{itoa(s), itoa(400 / s), "150", itoa(s), itoa(200 / s), ""}, ",") + "\n"
	}
	csv += "51,3" // a partial last line, as a run still writing leaves it
	p := filepath.Join(dir, "train.csv")
	os.WriteFile(p, []byte(csv), 0o644)
	files, err := Curves(p, filepath.Join(dir, "out"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
	}
	os.WriteFile(p, []byte("a,b\n1,2\n"), 0o644)
	if _, err := Curves(p, dir, 0); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("not a log: %v", err)
	}
	if _, err := Curves(filepath.Join(dir, "none.csv"), dir, 0); err == nil {
		t.Fatal("missing file accepted")
	}
}

func itoa(v int) string { return strconv.Itoa(v) }
