package position_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/messages-io/messages/position"
)

var layout = position.Layout{Stream: "MESSAGES", Partitions: 8}

func TestTokenRoundTrip(t *testing.T) {
	for _, tok := range []position.Token{
		{Layout: layout, Partition: 0, Sequence: 1},
		{Layout: layout, Partition: 7, Sequence: 1 << 40},
	} {
		s := tok.String()
		if strings.ContainsAny(s, ", ") {
			t.Errorf("token %q holds a separator", s)
		}
		got, err := position.ParseToken(s, layout)
		if err != nil || got != tok {
			t.Errorf("ParseToken(%q) = %+v, %v; want %+v", s, got, err, tok)
		}
	}
}

func TestParseTokensRefuses(t *testing.T) {
	good := position.Token{Layout: layout, Partition: 3, Sequence: 12}.String()
	tests := []struct {
		name   string
		values []string
		want   error
	}{
		{"not base64", []string{"!!"}, position.ErrMalformed},
		{"empty", []string{" , "}, position.ErrMalformed},
		{"truncated", []string{good[:len(good)-2]}, position.ErrMalformed},
		{"trailing bytes", []string{position.Token{Layout: layout, Partition: 3, Sequence: 12}.String() + "AA"}, position.ErrMalformed},
		{"a position", []string{position.At(layout, 5).String()}, position.ErrMalformed},
		{"other stream", []string{position.Token{Layout: position.Layout{Stream: "OTHER", Partitions: 8}, Sequence: 1}.String()}, position.ErrOtherLog},
		{"other partitions", []string{position.Token{Layout: position.Layout{Stream: "MESSAGES", Partitions: 4}, Sequence: 1}.String()}, position.ErrOtherLog},
		{"partition out of range", []string{position.Token{Layout: layout, Partition: 8, Sequence: 1}.String()}, position.ErrMalformed},
		{"sequence 0", []string{position.Token{Layout: layout, Partition: 1}.String()}, position.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := position.ParseTokens(tt.values, layout)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseTokens(%q) = %v, want %v", tt.values, err, tt.want)
			}
		})
	}
	many := slices.Repeat([]string{good}, position.MaxTokens+1)
	if _, err := position.ParseTokens([]string{strings.Join(many, ",")}, layout); err == nil {
		t.Errorf("%d tokens accepted", len(many))
	}
}

func TestParseTokensKeepsHighestPerPartition(t *testing.T) {
	a := position.Token{Layout: layout, Partition: 3, Sequence: 12}.String()
	b := position.Token{Layout: layout, Partition: 3, Sequence: 40}.String()
	c := position.Token{Layout: layout, Partition: 5, Sequence: 7}.String()
	need, err := position.ParseTokens([]string{a + ", " + b, c}, layout)
	if err != nil {
		t.Fatal(err)
	}
	if len(need) != 2 || need[3] != 40 || need[5] != 7 {
		t.Errorf("need %v, want map[3:40 5:7]", need)
	}
}

func TestPositionRoundTrip(t *testing.T) {
	p := position.At(layout, 1000)
	p.After[2] = 1042
	p.After[6] = 1 << 50
	got, err := position.ParsePosition(p.String(), layout)
	if err != nil || !slices.Equal(got.After, p.After) || got.Layout != layout {
		t.Errorf("ParsePosition(%q) = %+v, %v; want %+v", p.String(), got, err, p)
	}
	if _, err := position.ParsePosition(p.String(), position.Layout{Stream: "MESSAGES", Partitions: 4}); !errors.Is(err, position.ErrOtherLog) {
		t.Errorf("position of 8 partitions on 4: %v, want ErrOtherLog", err)
	}
	tok := position.Token{Layout: layout, Partition: 1, Sequence: 3}.String()
	if _, err := position.ParsePosition(tok, layout); !errors.Is(err, position.ErrMalformed) {
		t.Errorf("a token taken for a position: %v", err)
	}
}

// A stream appends each event's position to what it writes: the text
// appended is the position's, whatever it is appended to, however long.
func TestPositionAppendText(t *testing.T) {
	wide := position.Layout{Stream: "A_STREAM_OF_A_LONG_NAME", Partitions: 1024}
	p := position.At(wide, 7)
	for i := range p.After {
		p.After[i] += uint64(i) << 40
	}
	b, err := p.AppendText([]byte("id: "))
	if err != nil {
		t.Fatal(err)
	}
	text, ok := strings.CutPrefix(string(b), "id: ")
	if !ok || text != p.String() {
		t.Fatalf("AppendText after %q gave %q; want the prefix, then %q", "id: ", b, p.String())
	}
	got, err := position.ParsePosition(text, wide)
	if err != nil || !slices.Equal(got.After, p.After) {
		t.Errorf("ParsePosition of the appended text = %v, %v", got.After[:4], err)
	}
}

func TestPartitionOf(t *testing.T) {
	// FNV-1a of the key modulo the partitions, as the event store has
	// always placed events: another function would split a tag's events
	// across partitions.
	for _, tt := range []struct {
		key  string
		n    int
		want int
	}{{"cqrs", 8, 6}, {"go", 8, 3}, {"a", 8, 4}, {"cqrs", 1024, 550}, {"go", 1, 0}} {
		if got := position.PartitionOf(tt.key, tt.n); got != tt.want {
			t.Errorf("PartitionOf(%q, %d) = %d, want %d", tt.key, tt.n, got, tt.want)
		}
	}
}

// A notice of the fold reads back as it was written, and one that could not
// have been written is refused.
func TestFoldedRoundTrip(t *testing.T) {
	f := position.Folded{Database: "messages", Generation: 3, Partition: 5, From: 100, Through: 180, Stored: []uint64{100, 140, 180}}
	got, err := position.ParseFolded(f.Encode())
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, f)
	}
	for seq, want := range map[uint64][2]bool{99: {false, false}, 100: {true, true}, 120: {true, false}, 180: {true, true}, 181: {false, false}} {
		if decided, stored := got.Decides(seq); decided != want[0] || stored != want[1] {
			t.Errorf("Decides(%d) = %v, %v; want %v, %v", seq, decided, stored, want[0], want[1])
		}
	}
	for _, bad := range []string{
		``, `{`, `[]`,
		`{"db":"m","gen":0,"p":0,"from":1,"through":2}`,
		`{"db":"m","gen":1,"p":-1,"from":1,"through":2}`,
		`{"db":"m","gen":1,"p":0,"from":1,"through":9,"stored":[5,3]}`,
		`{"db":"m","gen":1,"p":0,"from":4,"through":9,"stored":[3]}`,
		`{"db":"m","gen":1,"p":0,"from":1,"through":9,"stored":[10]}`,
	} {
		if f, err := position.ParseFolded([]byte(bad)); !errors.Is(err, position.ErrMalformed) {
			t.Errorf("position.ParseFolded(%s) = %+v, %v; want ErrMalformed", bad, f, err)
		}
	}
}
