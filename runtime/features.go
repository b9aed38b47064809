package runtime

import (
	"image"

	"github.com/selfsup/selfsup/data"
)

// Features returns the features of imgs, one []float32 per image, from the
// model's default output (see DefaultOutput). Each image is converted,
// resized and normalised as the model's metadata says (see Preprocess), so
// a Go program needs nothing else to get frozen features:
//
//	sess, err := runtime.Open("model.onnx", runtime.Options{})
//	defer sess.Close()
//	feats, err := sess.Features(img1, img2)
func (s *Session) Features(imgs ...image.Image) ([][]float32, error) {
	flat, dim, err := ExtractDataset(s, data.Images(imgs), ExtractOptions{})
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(imgs))
	for i := range out {
		out[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return out, nil
}
