package dispatcher

import "testing"

func TestDecodeRejectsLoneSurrogates(t *testing.T) {
	tests := []struct {
		text string // as written in JSON
		ok   bool
	}{
		{`"plain"`, true},
		{`"\ud83d\ude00 pair"`, true},
		{`"\\ud800 is an escaped backslash"`, true},
		{`"\u00e9 \n \" \\"`, true},
		{`"\ud800x"`, false},
		{`"x\ud800"`, false},
		{`"\udc00"`, false},
		{`"\ud800\ud800"`, false},
		{`"\ud800\n"`, false},
		{`"\ude00\ud83d"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			in, err := decode([]byte(`{"text":` + tt.text + `,"tag":"x"}`))
			if (err == nil) != tt.ok {
				t.Fatalf("decode %s: %v, want ok=%v", tt.text, err, tt.ok)
			}
			if tt.ok && in.Text == "" {
				t.Errorf("decode %s: empty text", tt.text)
			}
		})
	}
}
