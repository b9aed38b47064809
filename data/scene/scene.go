// Package scene generates procedural 3-D scenes and ray-casts them into an
// RGB image with its free labels: depth, surface normals and instance
// contours (the synthetic imagery of Ren & Lee, "Cross-Domain
// Self-supervised Multi-task Feature Learning using Synthetic Imagery",
// CVPR 2018, arXiv 1711.09082, drawn here by a small ray caster instead
// of a game engine).
//
// A scene is a ground plane, a back wall and sometimes a side wall, two to
// six primitives (spheres, boxes, cylinders) standing on the ground or
// floating, each with a procedural solid texture (flat colour, checker,
// stripes or value noise), one or two directional lights with shadows and
// an ambient term, and a pinhole camera looking into it. Scenes come from
// a seed alone: Generate(seed, i) is the same scene on every machine, and
// Random draws one from a caller's generator (a training batch's).
//
// World coordinates: y up, the ground at y = 0, the camera near the origin
// looking along +z. Camera coordinates (the normals' frame): x right, y up,
// z along the viewing axis, away from the camera, so a surface facing the
// camera has a normal with z < 0. The package knows nothing about
// networks.
package scene

import (
	"math"
	"math/rand"
)

// Vec is a 3-vector.
type Vec [3]float64

// Add, Sub, Scale, Dot, Len, Mul (element-wise) and AddScaled (a + s b)
// are the usual vector operations.
func (a Vec) Add(b Vec) Vec                  { return Vec{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }
func (a Vec) Sub(b Vec) Vec                  { return Vec{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func (a Vec) Scale(s float64) Vec            { return Vec{a[0] * s, a[1] * s, a[2] * s} }
func (a Vec) Dot(b Vec) float64              { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func (a Vec) Len() float64                   { return math.Sqrt(a.Dot(a)) }
func (a Vec) Mul(b Vec) Vec                  { return Vec{a[0] * b[0], a[1] * b[1], a[2] * b[2]} }
func (a Vec) AddScaled(b Vec, s float64) Vec { return Vec{a[0] + b[0]*s, a[1] + b[1]*s, a[2] + b[2]*s} }

// Cross is the cross product a x b.
func (a Vec) Cross(b Vec) Vec {
	return Vec{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

// Unit is a scaled to length 1 (a itself when it is 0).
func (a Vec) Unit() Vec {
	if l := a.Len(); l > 0 {
		return a.Scale(1 / l)
	}
	return a
}

// Kind is a primitive's shape.
type Kind int

// Primitive shapes.
const (
	// Sphere of Radius around Center.
	Sphere Kind = iota
	// Box with half extents Half along the axes of Frame, centred at Center.
	Box
	// Cylinder of Radius around the local y axis of Frame, capped at local
	// y = ±Half[1], centred at Center.
	Cylinder
	// Plane through Center with normal Frame[1] (its local y axis),
	// infinite, seen from either side.
	Plane
)

var kindNames = [...]string{"sphere", "box", "cylinder", "plane"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// TexKind is a procedural texture's pattern.
type TexKind int

// Texture patterns, evaluated on the object's local coordinates (solid
// textures: no surface parametrisation).
const (
	// Flat is colour A everywhere.
	Flat TexKind = iota
	// Checker alternates A and B in cubes of side Scale.
	Checker
	// Stripes alternates A and B in slabs of width Scale across Dir.
	Stripes
	// Noise blends A into B by two octaves of value noise of cell Scale.
	Noise
)

// Texture is an object's albedo pattern: colours A and B (linear RGB in
// [0, 1]), the pattern's Scale in world units, Dir (Stripes; unit, local
// coordinates) and Seed (Noise).
type Texture struct {
	Kind  TexKind
	A, B  Vec
	Scale float64
	Dir   Vec
	Seed  uint64
}

// Object is one instance: a primitive with its texture. ID identifies it
// in the instance map (>= 1, unique in a scene; 0 is the background).
// Frame holds the object's local axes as orthonormal world vectors
// (Frame[0] local x, Frame[1] local y, Frame[2] local z).
type Object struct {
	Kind   Kind
	ID     int32
	Center Vec
	Radius float64 // Sphere, Cylinder
	Half   Vec     // Box half extents; Cylinder half height in Half[1]
	Frame  [3]Vec
	Tex    Texture
}

// Light is a directional light: Dir (unit) points from surfaces toward
// the light, Color is its intensity per channel.
type Light struct {
	Dir   Vec
	Color Vec
}

// Camera is a pinhole camera at Pos looking along Forward, with Right and
// Up completing an orthonormal frame, and a square image spanning FOV
// radians horizontally and vertically.
type Camera struct {
	Pos                Vec
	Forward, Right, Up Vec
	FOV                float64
}

// LookCamera is a camera at pos turned by yaw (radians, about the world's
// y axis; positive turns toward +x) and pitch (radians, positive looks up)
// from the +z axis, with the horizon level.
func LookCamera(pos Vec, yaw, pitch, fov float64) Camera {
	f := Vec{math.Sin(yaw) * math.Cos(pitch), math.Sin(pitch), math.Cos(yaw) * math.Cos(pitch)}
	r := Vec{0, 1, 0}.Cross(f).Unit()
	return Camera{Pos: pos, Forward: f, Right: r, Up: f.Cross(r), FOV: fov}
}

// Scene is what Render draws: the camera, the objects, the lights, the
// ambient light (per channel), whether objects cast shadows, and the
// colour of rays that hit nothing.
type Scene struct {
	Camera     Camera
	Objects    []Object
	Lights     []Light
	Ambient    Vec
	Shadows    bool
	Background Vec
}

// MaxDepth is the far bound of generated scenes, in world units: no
// surface Random places is seen farther along the camera axis (the back
// wall stands at most 16 units ahead), and rays that hit nothing get this
// depth. Depth targets are normalised by it (see the synthetic task).
const MaxDepth = 25.0

// Generate returns scene i of seed: the scene Random draws from a
// generator seeded with a hash of (seed, i), so every (seed, i) pair is
// its own scene and the same on every machine.
func Generate(seed int64, i int) *Scene {
	return Random(rand.New(rand.NewSource(int64(mix(uint64(seed), uint64(i))))))
}

// mix hashes two words into one (splitmix64 finaliser on each step).
func mix(a, b uint64) uint64 {
	h := splitmix(a ^ 0x9e3779b97f4a7c15)
	return splitmix(h ^ splitmix(b+0x632be59bd9b4e019))
}

func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform is a uniform draw in [lo, hi).
func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

// randomColor is a colour of random hue, saturation in [0.15, 0.9] and
// value in [0.3, 1] (linear RGB).
func randomColor(rng *rand.Rand) Vec {
	h, s, v := rng.Float64()*6, uniform(rng, 0.15, 0.9), uniform(rng, 0.3, 1)
	i := int(h)
	f := h - float64(i)
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	switch i % 6 {
	case 0:
		return Vec{v, t, p}
	case 1:
		return Vec{q, v, p}
	case 2:
		return Vec{p, v, t}
	case 3:
		return Vec{p, q, v}
	case 4:
		return Vec{t, p, v}
	}
	return Vec{v, p, q}
}

// randomTexture draws a pattern with colours from randomColor (B a
// contrasting one) and a scale in [lo, hi).
func randomTexture(rng *rand.Rand, lo, hi float64) Texture {
	t := Texture{Kind: TexKind(rng.Intn(4)), A: randomColor(rng), B: randomColor(rng), Scale: uniform(rng, lo, hi)}
	t.Dir = randomUnit(rng)
	t.Seed = rng.Uint64()
	return t
}

// randomUnit is a direction uniform on the sphere.
func randomUnit(rng *rand.Rand) Vec {
	for {
		v := Vec{2*rng.Float64() - 1, 2*rng.Float64() - 1, 2*rng.Float64() - 1}
		if l := v.Len(); l > 0.1 && l <= 1 {
			return v.Scale(1 / l)
		}
	}
}

// identity is the world frame.
var identity = [3]Vec{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}

// yawFrame is the world frame turned by a about the y axis.
func yawFrame(a float64) [3]Vec {
	c, s := math.Cos(a), math.Sin(a)
	return [3]Vec{{c, 0, -s}, {0, 1, 0}, {s, 0, c}}
}

// randomFrame is a uniformly random orthonormal frame.
func randomFrame(rng *rand.Rand) [3]Vec {
	y := randomUnit(rng)
	x := randomUnit(rng)
	x = x.Sub(y.Scale(x.Dot(y)))
	for x.Len() < 1e-3 {
		x = randomUnit(rng)
		x = x.Sub(y.Scale(x.Dot(y)))
	}
	x = x.Unit()
	return [3]Vec{x, y, x.Cross(y)}
}

// Random draws a scene from rng (all of its randomness comes from rng):
//
//   - camera at height 0.8-2.5 and x in [-1, 1], yaw ±0.3 rad, pitch
//     -0.45 to -0.05 rad (looking down a little), field of view 45-65°;
//   - a ground plane (y = 0), a back wall at z in [9, 16] and, half the
//     time, a side wall at x = ±[3.5, 7], each with a texture of scale
//     0.4-2;
//   - 2-6 objects (sphere, box or cylinder, equally likely) of size
//     0.3-1.1 within the camera's view at 2.5 units or more, their
//     footprints apart: spheres rest on the ground (75%) or float, boxes
//     rest turned about the vertical (70%) or float in any orientation,
//     cylinders stand (50%), lie (25%) or float; textures of scale
//     0.12-0.5;
//   - one or two directional lights 20-75° above the horizon, from within
//     110° of the camera's side (behind it: the surfaces it sees are
//     mostly lit, sometimes from the side or the back), total intensity
//     0.8-1.2 slightly tinted, ambient 0.2-0.4, shadows on.
func Random(rng *rand.Rand) *Scene {
	s := &Scene{Shadows: true}
	yaw, pitch := uniform(rng, -0.3, 0.3), uniform(rng, -0.45, -0.05)
	fov := uniform(rng, 45, 65) * math.Pi / 180
	cam := Vec{uniform(rng, -1, 1), uniform(rng, 0.8, 2.5), 0}
	s.Camera = LookCamera(cam, yaw, pitch, fov)
	s.Background = randomColor(rng)
	id := int32(0)
	next := func() int32 { id++; return id }
	s.Objects = append(s.Objects, Object{Kind: Plane, ID: next(), Center: Vec{0, 0, 0}, Frame: identity, Tex: randomTexture(rng, 0.4, 2)})
	zw := uniform(rng, 9, 16)
	s.Objects = append(s.Objects, Object{Kind: Plane, ID: next(), Center: Vec{0, 0, zw},
		Frame: [3]Vec{{1, 0, 0}, {0, 0, -1}, {0, 1, 0}}, Tex: randomTexture(rng, 0.4, 2)})
	xw := math.Inf(1)
	if rng.Intn(2) == 0 {
		xw = uniform(rng, 3.5, 7)
		side := 1.0
		if rng.Intn(2) == 0 {
			side = -1
		}
		s.Objects = append(s.Objects, Object{Kind: Plane, ID: next(), Center: Vec{side * xw, 0, 0},
			Frame: [3]Vec{{0, 1, 0}, {-side, 0, 0}, {0, 0, 1}}, Tex: randomTexture(rng, 0.4, 2)})
	}
	type disc struct{ x, z, r float64 }
	var placed []disc
	n := 2 + rng.Intn(5)
	for k := 0; k < n; k++ {
		size := uniform(rng, 0.3, 1.1)
		o := Object{Kind: Kind(rng.Intn(3)), Frame: identity, Tex: randomTexture(rng, 0.12, 0.5)}
		var foot, bottom float64 // footprint radius, depth of the lowest point below the centre
		float := false
		switch o.Kind {
		case Sphere:
			o.Radius = size
			foot, bottom = size, size
			float = rng.Float64() < 0.25
		case Box:
			o.Half = Vec{uniform(rng, 0.4, 1) * size, uniform(rng, 0.4, 1) * size, uniform(rng, 0.4, 1) * size}
			foot, bottom = math.Hypot(o.Half[0], o.Half[2]), o.Half[1]
			if rng.Float64() < 0.7 {
				o.Frame = yawFrame(rng.Float64() * math.Pi)
			} else {
				o.Frame = randomFrame(rng)
				foot = o.Half.Len()
				bottom, float = foot, true
			}
		case Cylinder:
			o.Radius, o.Half[1] = uniform(rng, 0.3, 0.8)*size, uniform(rng, 0.4, 1.2)*size
			switch u := rng.Float64(); {
			case u < 0.5: // standing
				foot, bottom = o.Radius, o.Half[1]
			case u < 0.75: // lying: the local y axis horizontal
				a := rng.Float64() * math.Pi
				o.Frame = [3]Vec{{0, 1, 0}, {math.Cos(a), 0, math.Sin(a)}, {math.Sin(a), 0, -math.Cos(a)}}
				foot, bottom = math.Hypot(o.Radius, o.Half[1]), o.Radius
			default:
				o.Frame = randomFrame(rng)
				foot = math.Hypot(o.Radius, o.Half[1])
				bottom, float = foot, true
			}
		}
		ok := false
		for try := 0; try < 20 && !ok; try++ {
			a := yaw + uniform(rng, -0.4, 0.4)*fov
			r := uniform(rng, 2.5, zw-1)
			x, z := cam[0]+r*math.Sin(a), r*math.Cos(a)
			if z+foot > zw-0.05 || math.Abs(x)+foot > xw-0.05 {
				continue
			}
			ok = true
			for _, d := range placed {
				if math.Hypot(d.x-x, d.z-z) < d.r+foot+0.05 {
					ok = false
					break
				}
			}
			if ok {
				y := bottom
				if float {
					y += uniform(rng, 0.2, 1.5)
				}
				o.Center = Vec{x, y, z}
				placed = append(placed, disc{x, z, foot})
			}
		}
		if ok {
			o.ID = next()
			s.Objects = append(s.Objects, o)
		}
	}
	nl := 1 + rng.Intn(2)
	total := uniform(rng, 0.8, 1.2)
	for k := 0; k < nl; k++ {
		el, az := uniform(rng, 20, 75)*math.Pi/180, (180+uniform(rng, -110, 110))*math.Pi/180
		share := total / float64(nl)
		tint := Vec{uniform(rng, 0.85, 1.15), uniform(rng, 0.85, 1.15), uniform(rng, 0.85, 1.15)}
		s.Lights = append(s.Lights, Light{Dir: Vec{math.Cos(el) * math.Sin(az), math.Sin(el), math.Cos(el) * math.Cos(az)}, Color: tint.Scale(share)})
	}
	a := uniform(rng, 0.2, 0.4)
	s.Ambient = Vec{a * uniform(rng, 0.9, 1.1), a * uniform(rng, 0.9, 1.1), a * uniform(rng, 0.9, 1.1)}
	return s
}
