package eval_test

import (
	"fmt"
	"log"
	"math/rand"

	"github.com/selfsup/selfsup/eval"
)

// features makes n labelled rows of d values: class c is a blob around
// the unit vector along dimension c.
func features(n, d, k int, rng *rand.Rand) ([]float32, []int) {
	x, y := make([]float32, n*d), make([]int, n)
	for i := range y {
		y[i] = i % k
		for j := 0; j < d; j++ {
			x[i*d+j] = 0.1 * float32(rng.NormFloat64())
		}
		x[i*d+y[i]]++
	}
	return x, y
}

// The linear probe and kNN take frozen features ([n, d], row-major) and
// labels, as `selfsup extract` writes them (see ReadFeatures).
func ExampleLinearProbe() {
	rng := rand.New(rand.NewSource(1))
	const d, k = 8, 3
	trainX, trainY := features(300, d, k, rng)
	testX, testY := features(90, d, k, rng)

	lin, err := eval.LinearProbe(trainX, trainY, testX, testY, d, k, eval.DefaultProbeConfig())
	if err != nil {
		log.Fatal(err)
	}
	knn, err := eval.KNN(trainX, trainY, testX, testY, d, k, eval.DefaultKNNConfig())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("linear top-1 %.2f, kNN top-1 %.2f\n", lin.Top1, knn.Top1)
	// Output: linear top-1 1.00, kNN top-1 1.00
}
