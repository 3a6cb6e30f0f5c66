package dispatcher

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/messages-io/messages/message"
)

// storedTagRE is the grammar of a tag as stored: lower case, no '#'.
var storedTagRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// FuzzDecode feeds POST bodies to the decoder. Whatever it accepts is one
// JSON object with exactly text and tag, a valid text and a tag in its stored
// form, and reads back the same when written again; whatever it refuses, it
// says why.
func FuzzDecode(f *testing.F) {
	for _, body := range []string{
		`{"text":"hello","tag":"go"}`,
		`{"tag":"#Go","text":"Hello, event sourcing!"}`,
		`{"text":"\u00e9t\u00e9 \ud83d\ude00","tag":"a_b-c"}`,
		`{"text":"x","tag":"go","extra":1}`,
		`{"text":"x","text":"y","tag":"go"}`,
		`{"text":1,"tag":"go"}`,
		`{"text":"\ud800","tag":"go"}`,
		`{"text":"   ","tag":"go"}`,
		`{"text":"x","tag":"##go"}`,
		`{"text":"x","tag":"go"} {}`,
		`[{"text":"x","tag":"go"}]`,
		`{"text":"x","tag":null}`,
		"\xef\xbb\xbf{\"text\":\"x\",\"tag\":\"go\"}",
		`{"text":"x","tag":"go"`,
		``,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := decode(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("refused %q without a reason", body)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted %q, which is not JSON", body)
		}
		if err := message.ValidateText(in.Text); err != nil {
			t.Fatalf("accepted %q with an invalid text: %v", body, err)
		}
		if !storedTagRE.MatchString(in.Tag) {
			t.Fatalf("accepted %q with tag %q, not in stored form", body, in.Tag)
		}
		// A replacement character in the text was written as one: the
		// decoder turns no invalid escape into it silently.
		if strings.ContainsRune(in.Text, utf8.RuneError) && !writesReplacement(body) {
			t.Fatalf("accepted %q as text %q: a replacement character the body does not hold", body, in.Text)
		}
		// What encoding/json reads from the body is what was accepted.
		var fields map[string]any
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatalf("accepted %q: %v", body, err)
		}
		text, _ := fields["text"].(string)
		tag, _ := fields["tag"].(string)
		if len(fields) != 2 || text != in.Text || strings.ToLower(strings.TrimPrefix(tag, "#")) != in.Tag {
			t.Fatalf("accepted %q as %+v; encoding/json reads %v", body, in, fields)
		}
		// Written again, it reads the same.
		again, err := json.Marshal(map[string]string{"text": in.Text, "tag": in.Tag})
		if err != nil {
			t.Fatal(err)
		}
		if back, err := decode(again); err != nil || back != in {
			t.Fatalf("%+v written as %s reads %+v, %v", in, again, back, err)
		}
	})
}

// writesReplacement reports whether a JSON text holds U+FFFD, as UTF-8 or as
// an escape.
func writesReplacement(body []byte) bool {
	lower := strings.ToLower(string(body))
	return strings.Contains(lower, "\\ufffd") || strings.ContainsRune(string(body), utf8.RuneError)
}
