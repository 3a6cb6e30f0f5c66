package eventstore

import (
	"errors"
	"testing"
)

// JetStream's answers to the commit of a batch of 3, and what each says was
// stored.
func TestBatchAck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    string
		want      AppendedBatch
		wantErr   []error // each wrapped
		notStored bool    // and no ErrOutcomeUnknown
	}{
		{"stored", `{"stream":"EV","seq":12,"batch":"b1","count":3}`, AppendedBatch{Last: 12}, nil, false},
		{"duplicate", `{"error":{"code":400,"err_code":10201,"description":"atomic publish batch contains duplicate message id"}}`,
			AppendedBatch{Duplicate: true}, nil, false},
		{"incomplete", `{"error":{"code":400,"err_code":10176,"description":"atomic publish batch is incomplete"}}`,
			AppendedBatch{}, []error{ErrUnavailable}, true},
		{"too many in flight", `{"error":{"code":429,"err_code":10210,"description":"atomic publish too many inflight"}}`,
			AppendedBatch{}, []error{ErrUnavailable}, true},
		{"duplicate in process", `{"error":{"code":409,"err_code":10158,"description":"duplicate message id is in process"}}`,
			AppendedBatch{}, []error{ErrUnavailable}, true},
		{"too large", `{"error":{"code":400,"err_code":10199,"description":"atomic publish batch is too large: 2"}}`,
			AppendedBatch{}, []error{ErrRejected}, true},
		{"not taken as a batch", `{"stream":"EV","seq":12}`, AppendedBatch{}, []error{ErrOutcomeUnknown, ErrRejected}, false},
		{"counted otherwise", `{"stream":"EV","seq":12,"batch":"b1","count":2}`, AppendedBatch{}, []error{ErrOutcomeUnknown, ErrRejected}, false},
		{"garbled", `{"stream"`, AppendedBatch{}, []error{ErrOutcomeUnknown, ErrUnavailable}, false},
	} {
		got, err := batchAck([]byte(tc.answer), 3)
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if (err != nil) != (len(tc.wantErr) > 0) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		for _, want := range tc.wantErr {
			if !errors.Is(err, want) {
				t.Errorf("%s: err = %v, want it to wrap %v", tc.name, err, want)
			}
		}
		if tc.notStored && errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("%s: err = %v, an unknown outcome for a batch that stored nothing", tc.name, err)
		}
	}
}
