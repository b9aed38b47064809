package scene

import (
	"math"
	"math/rand"
	"testing"
)

// oneObject is a scene of obj alone, seen by a camera at the origin
// looking along +z with a 60° field of view, no lights.
func oneObject(obj Object) *Scene {
	return &Scene{Camera: LookCamera(Vec{}, 0, 0, math.Pi/3), Objects: []Object{obj}}
}

func normalAt(r *Render, p int) Vec {
	n := r.Size * r.Size
	return Vec{float64(r.Normal[p]), float64(r.Normal[n+p]), float64(r.Normal[2*n+p])}
}

// A sphere of radius R centred D ahead on the camera axis: the centre
// pixel (odd size) sees depth D - R and a normal pointing at the camera;
// every pixel's depth is the analytic ray-sphere intersection of its
// centre ray; normals are unit length everywhere; the contours are
// exactly the sphere's silhouette pixels (those with a background
// neighbour) and nothing inside it or in the background.
func TestSphereLabels(t *testing.T) {
	const size, D, R = 31, 6.0, 1.5
	s := oneObject(Object{Kind: Sphere, ID: 1, Center: Vec{0, 0, D}, Radius: R, Frame: identity})
	r, err := s.Render(size, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	c := size/2*size + size/2
	if r.ID[c] != 1 || math.Abs(float64(r.Depth[c])-(D-R)) > 1e-6 {
		t.Fatalf("centre pixel: id %d depth %v, expected 1 and %v", r.ID[c], r.Depth[c], D-R)
	}
	if n := normalAt(r, c); math.Abs(n[0]) > 1e-7 || math.Abs(n[1]) > 1e-7 || math.Abs(n[2]+1) > 1e-7 {
		t.Fatalf("centre normal %v, expected (0, 0, -1)", n)
	}
	h := math.Tan(math.Pi / 6)
	inside, rim := 0, 0
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			p := y*size + x
			if l := normalAt(r, p).Len(); math.Abs(l-1) > 1e-6 {
				t.Fatalf("pixel (%d, %d): normal of length %v", x, y, l)
			}
			// The centre ray (u, v, 1) meets |t (u, v, 1) - (0, 0, D)| = R at
			// the smaller root t, its depth.
			u, v := (2*(float64(x)+0.5)/size-1)*h, (1-2*(float64(y)+0.5)/size)*h
			a, b, cc := u*u+v*v+1, -D, D*D-R*R
			disc := b*b - a*cc
			if hit := disc >= 0; hit != (r.ID[p] == 1) {
				t.Fatalf("pixel (%d, %d): id %d, analytic hit %v", x, y, r.ID[p], hit)
			}
			if disc >= 0 {
				want := (-b - math.Sqrt(disc)) / a
				if math.Abs(float64(r.Depth[p])-want) > 1e-5*want {
					t.Fatalf("pixel (%d, %d): depth %v, analytic %v", x, y, r.Depth[p], want)
				}
			} else if r.Depth[p] != MaxDepth {
				t.Fatalf("background pixel (%d, %d): depth %v, expected MaxDepth", x, y, r.Depth[p])
			}
			silhouette := false
			for _, q := range [][2]int{{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}} {
				if q[0] >= 0 && q[0] < size && q[1] >= 0 && q[1] < size && r.ID[q[0]*size+q[1]] == 0 {
					silhouette = r.ID[p] == 1
				}
			}
			if (r.Contour[p] == 1) != silhouette {
				t.Fatalf("pixel (%d, %d): contour %d, silhouette %v (id %d)", x, y, r.Contour[p], silhouette, r.ID[p])
			}
			if r.ID[p] == 1 {
				inside++
				if silhouette {
					rim++
				}
			}
		}
	}
	if inside < 100 || rim < 20 || rim > inside/2 {
		t.Fatalf("%d sphere pixels, %d on the silhouette", inside, rim)
	}
}

// Box faces: an axis-aligned box's front face faces the camera at depth
// D - half; turned by a about the vertical, the centre ray meets the face
// whose normal is the turned -z axis; seen from above, the top face's
// normal is the world's up in camera coordinates.
func TestBoxNormals(t *testing.T) {
	const size = 31
	c := size/2*size + size/2
	r, _ := oneObject(Object{Kind: Box, ID: 1, Center: Vec{0, 0, 5}, Half: Vec{1, 0.5, 1}, Frame: identity}).Render(size, DefaultOptions())
	if n := normalAt(r, c); r.Depth[c] != 4 || n != (Vec{0, 0, -1}) {
		t.Fatalf("axis-aligned box: depth %v normal %v, expected 4 and (0, 0, -1)", r.Depth[c], n)
	}
	a := 0.5
	r, _ = oneObject(Object{Kind: Box, ID: 1, Center: Vec{0, 0, 5}, Half: Vec{1, 1, 1}, Frame: yawFrame(a)}).Render(size, DefaultOptions())
	want := Vec{-math.Sin(a), 0, -math.Cos(a)} // -Frame[2]
	if n := normalAt(r, c); n.Sub(want).Len() > 1e-6 {
		t.Fatalf("turned box: normal %v, expected %v", n, want)
	}
	// Both visible side faces: every box pixel's normal is one of the two.
	other := Vec{math.Cos(a), 0, -math.Sin(a)} // +Frame[0]
	faces := map[bool]int{}
	for p := range r.ID {
		if r.ID[p] == 1 {
			n := normalAt(r, p)
			isFront := n.Sub(want).Len() < 1e-6
			if !isFront && n.Sub(other).Len() > 1e-6 {
				t.Fatalf("turned box pixel %d: normal %v, neither %v nor %v", p, n, want, other)
			}
			faces[isFront]++
		}
	}
	if faces[true] == 0 || faces[false] == 0 {
		t.Fatalf("turned box: face pixel counts %v", faces)
	}
	// From 3 units above, pitched down 60°, a flat box's top fills the
	// centre: world up in camera coordinates is (0, cos 60°, sin 60°)
	// with the forward axis pointing down.
	s := oneObject(Object{Kind: Box, ID: 1, Center: Vec{0, 0, 3}, Half: Vec{2, 0.1, 2}, Frame: identity})
	s.Camera = LookCamera(Vec{0, 3, 0}, 0, -math.Pi/3, math.Pi/3)
	r, _ = s.Render(size, DefaultOptions())
	up := Vec{0, math.Cos(math.Pi / 3), math.Sin(-math.Pi / 3)}
	if n := normalAt(r, c); r.ID[c] != 1 || n.Sub(up).Len() > 1e-6 {
		t.Fatalf("top face: id %d normal %v, expected %v", r.ID[c], n, up)
	}
}

// A standing cylinder's side faces the camera on its axis (depth D - r),
// a lying one seen end-on shows its cap.
func TestCylinder(t *testing.T) {
	const size = 31
	c := size/2*size + size/2
	r, _ := oneObject(Object{Kind: Cylinder, ID: 1, Center: Vec{0, 0, 5}, Radius: 0.8, Half: Vec{0, 1, 0}, Frame: identity}).Render(size, DefaultOptions())
	if n := normalAt(r, c); math.Abs(float64(r.Depth[c])-4.2) > 1e-6 || n.Sub(Vec{0, 0, -1}).Len() > 1e-6 {
		t.Fatalf("side: depth %v normal %v", r.Depth[c], n)
	}
	end := Object{Kind: Cylinder, ID: 1, Center: Vec{0, 0, 5}, Radius: 0.8, Half: Vec{0, 1, 0}, Frame: [3]Vec{{1, 0, 0}, {0, 0, 1}, {0, -1, 0}}}
	r, _ = oneObject(end).Render(size, DefaultOptions())
	if n := normalAt(r, c); math.Abs(float64(r.Depth[c])-4) > 1e-6 || n.Sub(Vec{0, 0, -1}).Len() > 1e-6 {
		t.Fatalf("cap: depth %v normal %v", r.Depth[c], n)
	}
}

// Lambert shading: a wall facing the camera with a flat albedo a, ambient
// m and a light shining straight at it gives sRGB(a (m + 1)); turned away
// from the light, sRGB(a m); a sphere between the light and the ground
// shadows it.
func TestShading(t *testing.T) {
	const size, a, m = 9, 0.4, 0.1
	wall := Object{Kind: Plane, ID: 1, Center: Vec{0, 0, 5}, Frame: [3]Vec{{1, 0, 0}, {0, 0, -1}, {0, 1, 0}}, Tex: Texture{Kind: Flat, A: Vec{a, a, a}}}
	s := oneObject(wall)
	s.Ambient = Vec{m, m, m}
	s.Lights = []Light{{Dir: Vec{0, 0, -1}, Color: Vec{1, 1, 1}}}
	r, _ := s.Render(size, DefaultOptions())
	for _, v := range r.RGB {
		if math.Abs(float64(v)-srgb(a*(m+1))) > 2e-4 {
			t.Fatalf("lit wall %v, expected %v", v, srgb(a*(m+1)))
		}
	}
	s.Lights[0].Dir = Vec{0, 0, 1}
	r, _ = s.Render(size, DefaultOptions())
	if math.Abs(float64(r.RGB[0])-srgb(a*m)) > 2e-4 {
		t.Fatalf("wall lit from behind %v, expected %v", r.RGB[0], srgb(a*m))
	}
	ground := Object{Kind: Plane, ID: 1, Frame: identity, Tex: Texture{Kind: Flat, A: Vec{a, a, a}}}
	ball := Object{Kind: Sphere, ID: 2, Center: Vec{0, 1.5, 6}, Radius: 0.5, Frame: identity, Tex: Texture{Kind: Flat, A: Vec{1, 0, 0}}}
	s = &Scene{Camera: LookCamera(Vec{0, 2, 0}, 0, -0.5, math.Pi/3), Objects: []Object{ground, ball}, Shadows: true,
		Lights: []Light{{Dir: Vec{0, 1, 0}, Color: Vec{1, 1, 1}}}, Ambient: Vec{m, m, m}}
	// The ground point under the ball, where the camera sees it.
	under := Vec{0, 0, 6}.Sub(s.Camera.Pos)
	u, v := under.Dot(s.Camera.Right)/under.Dot(s.Camera.Forward), under.Dot(s.Camera.Up)/under.Dot(s.Camera.Forward)
	h := math.Tan(math.Pi / 6)
	const big = 41
	x, y := int((u/h+1)/2*big), int((1-v/h)/2*big)
	r, _ = s.Render(big, DefaultOptions())
	p := y*big + x
	corner := big*big - big // bottom left: ground in the sun
	if r.ID[p] != 1 || math.Abs(float64(r.RGB[p])-srgb(a*m)) > 2e-4 || r.ID[corner] != 1 || math.Abs(float64(r.RGB[corner])-srgb(a*(m+1))) > 2e-4 {
		t.Fatalf("ground under the ball (id %d): %v, expected the shadow %v; ground elsewhere %v, expected %v", r.ID[p], r.RGB[p], srgb(a*m), r.RGB[corner], srgb(a*(m+1)))
	}
}

// Two spheres that share an id, one behind the other: the depth rule
// draws a contour on the nearer one where they meet, where the id rule
// sees none.
func TestDepthDiscontinuity(t *testing.T) {
	const size = 31
	s := oneObject(Object{Kind: Sphere, ID: 1, Center: Vec{0.8, 0, 4}, Radius: 0.8, Frame: identity})
	s.Objects = append(s.Objects, Object{Kind: Sphere, ID: 1, Center: Vec{-1, 0, 9}, Radius: 2.5, Frame: identity})
	r, _ := s.Render(size, DefaultOptions())
	found := false
	for y := 0; y < size; y++ {
		for x := 1; x < size; x++ {
			p, q := y*size+x, y*size+x-1
			if r.ID[p] == 1 && r.ID[q] == 1 && r.Depth[p] < 4 && r.Depth[q] > 6 {
				found = true
				if r.Contour[p] != 1 || r.Contour[q] != 0 {
					t.Fatalf("row %d: near pixel contour %d, far pixel %d, expected 1 and 0", y, r.Contour[p], r.Contour[q])
				}
			}
		}
	}
	if !found {
		t.Fatal("the spheres do not meet in the image")
	}
}

// Scene i of a seed is the same scene every time, different from scene
// i+1 and from scene i of another seed; Random draws from its generator
// alone.
func TestDeterminism(t *testing.T) {
	render := func(s *Scene) *Render {
		r, err := s.Render(32, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	same := func(a, b *Render) bool {
		for i := range a.RGB {
			if a.RGB[i] != b.RGB[i] || a.Normal[i] != b.Normal[i] {
				return false
			}
		}
		for i := range a.Depth {
			if a.Depth[i] != b.Depth[i] || a.ID[i] != b.ID[i] || a.Contour[i] != b.Contour[i] {
				return false
			}
		}
		return true
	}
	a := render(Generate(7, 3))
	if !same(a, render(Generate(7, 3))) {
		t.Fatal("scene 3 of seed 7 differs between two draws")
	}
	if same(a, render(Generate(7, 4))) || same(a, render(Generate(8, 3))) {
		t.Fatal("another index or seed gave the same scene")
	}
	if !same(render(Random(rand.New(rand.NewSource(5)))), render(Random(rand.New(rand.NewSource(5))))) {
		t.Fatal("Random differs under the same seed")
	}
}

// Generated scenes: every pixel hits a surface within MaxDepth, normals
// are unit and face the pixel's ray, some pixels are contours and not most,
// and colours stay in [0, 1]; the footprints only skip objects the ray
// misses (rendering without them gives the same hits).
func TestGeneratedScenes(t *testing.T) {
	for i := 0; i < 40; i++ {
		s := Generate(11, i)
		r, err := s.Render(32, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		edges := 0
		h := math.Tan(s.Camera.FOV / 2)
		for p := range r.ID {
			n := normalAt(r, p)
			_, dir := s.Camera.rayTan(float64(p%32)+0.5, float64(p/32)+0.5, 32, h)
			if r.ID[p] == 0 || !(r.Depth[p] > 0 && r.Depth[p] < MaxDepth) || math.Abs(n.Len()-1) > 1e-6 || n.Dot(dir) > 1e-6 {
				t.Fatalf("scene %d pixel %d: id %d depth %v normal %v", i, p, r.ID[p], r.Depth[p], n)
			}
			edges += int(r.Contour[p])
		}
		if edges == 0 || edges > len(r.ID)/2 {
			t.Fatalf("scene %d: %d contour pixels of %d", i, edges, len(r.ID))
		}
		for _, v := range r.RGB {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("scene %d: colour %v", i, v)
			}
		}
		fp := s.footprints(32)
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				for _, off := range [][2]float64{{0.5, 0.5}, {0.01, 0.01}, {0.99, 0.99}} {
					d, _ := s.Camera.rayTan(float64(x)+off[0], float64(y)+off[1], 32, h)
					a, b := s.cast(s.Camera.Pos, d, rayEps, fp, x, y), s.cast(s.Camera.Pos, d, rayEps, nil, 0, 0)
					if a.obj != b.obj || a.t != b.t {
						t.Fatalf("scene %d pixel (%d, %d): culled hit %d at %v, full %d at %v", i, x, y, a.obj, a.t, b.obj, b.t)
					}
				}
			}
		}
	}
	if _, err := Generate(1, 1).Render(0, DefaultOptions()); err == nil {
		t.Fatal("size 0 accepted")
	}
}
