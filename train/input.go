package train

import "github.com/selfsup/selfsup/models"

// ArchInputSize is the square input size, in pixels, that arch was
// designed for: 32 for the CIFAR-stem networks (resnet18c, resnet20c), 224
// for the ImageNet-stem ones. Image folders whose photos are larger are
// shrunk to it by default before training, so that a folder of one's own
// photos trains at the architecture's size instead of at full resolution.
func ArchInputSize(arch string) (int, error) {
	s, err := models.New(arch, 3)
	if err != nil {
		return 0, err
	}
	return s.InputSize, nil
}
