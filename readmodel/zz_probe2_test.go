package readmodel

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestZZProbe2(t *testing.T) {
	db := testkit.Database(t)
	ctx := t.Context()
	variants := map[string]func() any{
		"nested": func() any {
			m := bson.M{}
			for j := 0; j < 190; j++ {
				m[fmt.Sprintf("01HX%022d", j)] = bson.M{"s": int64(j)}
			}
			return m
		},
		"flatint": func() any {
			m := bson.M{}
			for j := 0; j < 190; j++ {
				m[fmt.Sprintf("01HX%022d", j)] = int64(j)
			}
			return m
		},
		"strarray": func() any {
			var a []string
			for j := 0; j < 190; j++ {
				a = append(a, fmt.Sprintf("01HX%022d:%d", j, j))
			}
			return a
		},
		"onestring": func() any {
			var b strings.Builder
			for j := 0; j < 190; j++ {
				fmt.Fprintf(&b, "01HX%022d%d,", j, 1000000+j)
			}
			return b.String()
		},
		"binary": func() any {
			b := make([]byte, 190*24)
			return bson.Binary{Subtype: 0, Data: b}
		},
	}
	for name, mk := range variants {
		c := db.Collection("probe_" + name)
		var ins []any
		for i := 0; i < 200; i++ {
			ins = append(ins, bson.M{"_id": fmt.Sprintf("k/%04d", i), "m": mk()})
		}
		start := time.Now()
		if _, err := c.InsertMany(ctx, ins); err != nil {
			t.Fatal(err)
		}
		insT := time.Since(start) / 200
		start = time.Now()
		for i := 0; i < 200; i++ {
			var d bson.M
			if err := c.FindOne(ctx, bson.M{"_id": fmt.Sprintf("k/%04d", i)}).Decode(&d); err != nil {
				t.Fatal(err)
			}
		}
		findT := time.Since(start) / 200
		start = time.Now()
		for i := 0; i < 200; i++ {
			if _, err := c.ReplaceOne(ctx, bson.M{"_id": fmt.Sprintf("k/%04d", i)}, bson.M{"m": mk(), "x": 1}, options.Replace().SetUpsert(true)); err != nil {
				t.Fatal(err)
			}
		}
		replT := time.Since(start) / 200
		start = time.Now()
		for i := 0; i < 200; i++ {
			if _, err := c.UpdateOne(ctx, bson.M{"_id": fmt.Sprintf("k/%04d", i)}, bson.M{"$set": bson.M{"y": fmt.Sprint(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		updT := time.Since(start) / 200
		t.Logf("%-10s insert %v find %v replace %v update-other-field %v", name, insT, findT, replT, updT)
	}
}
