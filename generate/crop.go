package generate

import "image"

// crop removes the grid border from a one-image grid, so single samples are
// exactly h×w (what FID tools expect).
func crop(img image.Image, w, h int) image.Image {
	type sub interface {
		SubImage(image.Rectangle) image.Image
	}
	if s, ok := img.(sub); ok {
		return s.SubImage(image.Rect(2, 2, 2+w, 2+h))
	}
	return img
}
