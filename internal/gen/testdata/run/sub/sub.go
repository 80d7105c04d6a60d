// Package sub declares a type that the tools of package gentest use.
package sub

// Point is a point on a grid.
type Point struct {
	X int `json:"x"`
	Y int `json:"y"`
}
