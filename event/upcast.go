package event

import "fmt"

// Upcaster turns an event of one version into the next version.
type Upcaster func(Event) (Event, error)

// Upcasters holds, per event type, the upcasters from each old version and
// the current version.
type Upcasters struct {
	current map[string]int
	steps   map[string]map[int]Upcaster
}

// NewUpcasters returns an empty registry.
func NewUpcasters() *Upcasters {
	return &Upcasters{current: map[string]int{}, steps: map[string]map[int]Upcaster{}}
}

// Current declares the current version of eventType.
func (u *Upcasters) Current(eventType string, version int) *Upcasters {
	u.current[eventType] = version
	return u
}

// Register adds the upcaster from version from of eventType to from+1.
func (u *Upcasters) Register(eventType string, from int, f Upcaster) *Upcasters {
	if u.steps[eventType] == nil {
		u.steps[eventType] = map[int]Upcaster{}
	}
	u.steps[eventType][from] = f
	return u
}

// Upcast returns ev in the current version of its type. An event newer than
// the current version, or one with no way up, is malformed to this reader.
func (u *Upcasters) Upcast(ev Event) (Event, error) {
	want, ok := u.current[ev.Type]
	if !ok {
		return ev, fmt.Errorf("%w: unknown event type %q", ErrMalformed, ev.Type)
	}
	for ev.Version < want {
		step, ok := u.steps[ev.Type][ev.Version]
		if !ok {
			return ev, fmt.Errorf("%w: no upcaster for %s version %d", ErrMalformed, ev.Type, ev.Version)
		}
		next, err := step(ev)
		if err != nil {
			return ev, fmt.Errorf("%w: upcasting %s version %d: %v", ErrMalformed, ev.Type, ev.Version, err)
		}
		next.Version = ev.Version + 1
		ev = next
	}
	if ev.Version > want {
		return ev, fmt.Errorf("%w: %s version %d is newer than this reader's %d", ErrMalformed, ev.Type, ev.Version, want)
	}
	return ev, nil
}
