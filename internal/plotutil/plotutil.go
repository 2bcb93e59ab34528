// Package plotutil lays gonum/plot plots out in a grid and encodes it as one PNG.
package plotutil

import (
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WriteGrid draws rows of plots (nil leaves a cell empty), each cell×cell,
// as one PNG written to w.
func WriteGrid(w io.Writer, rows [][]*plot.Plot, cell vg.Length) error {
	nr, nc := len(rows), len(rows[0])
	img := vgimg.New(cell*vg.Length(nc), cell*vg.Length(nr))
	dc := draw.New(img)
	pad := vg.Millimeter
	t := draw.Tiles{Rows: nr, Cols: nc, PadX: pad, PadY: pad, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
	cs := plot.Align(rows, t, dc)
	for i, row := range rows {
		for j, p := range row {
			if p != nil {
				p.Draw(cs[i][j])
			}
		}
	}
	_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w)
	return err
}
