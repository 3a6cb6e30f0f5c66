package embedded

import (
	"testing"
	"time"
)

func TestParseSync(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Sync
		ok   bool
	}{
		{"always", Sync{Always: true}, true},
		{"ALWAYS", Sync{Always: true}, true},
		{"2m", Sync{Interval: 2 * time.Minute}, true},
		{"500ms", Sync{Interval: 500 * time.Millisecond}, true},
		{"0s", Sync{}, false},
		{"-1s", Sync{}, false},
		{"never", Sync{}, false},
		{"", Sync{}, false},
	} {
		got, err := ParseSync(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSync(%q) = %+v, %v; want %+v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok {
			if again, err := ParseSync(got.String()); err != nil || again != got {
				t.Errorf("ParseSync(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		}
	}
}

// The server runs JetStream with the policy asked for, and with the
// server's own default when none is.
func TestStartNATSSync(t *testing.T) {
	for _, tc := range []struct {
		sync         Sync
		always       bool
		syncInterval time.Duration
	}{
		{Sync{}, false, DefaultSyncInterval},
		{Sync{Always: true}, true, DefaultSyncInterval},
		{Sync{Interval: time.Second}, false, time.Second},
	} {
		s, err := StartNATS(NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Sync: tc.sync})
		if err != nil {
			t.Fatal(err)
		}
		got := s.JetStreamConfig()
		s.Shutdown()
		s.WaitForShutdown()
		if got == nil || got.SyncAlways != tc.always || got.SyncInterval != tc.syncInterval {
			t.Errorf("sync %s: JetStream config %+v, want always %v, interval %v", tc.sync, got, tc.always, tc.syncInterval)
		}
	}
}
