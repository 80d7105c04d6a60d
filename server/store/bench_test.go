package store

import (
	"context"
	"strconv"
	"testing"

	"github.com/atpgo/atp/internal/pgtest"
)

// Key lookup (every request's authentication) and tool registration on
// each engine, for the ratio PostgreSQL / SQLite. The PostgreSQL numbers
// include a round trip to the database: on loopback here, a network hop
// in a deployment.
//
//	ATP_TEST_POSTGRES=postgres://... go test -run '^$' -bench . ./server/store/

func eachEngineBench(b *testing.B, fn func(b *testing.B, s *Store)) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		b.Run(engine, func(b *testing.B) {
			var dsn string
			if engine == EnginePostgres {
				dsn = pgtest.DSN(b)
			} else {
				dsn = b.TempDir() + "/atp.db"
			}
			s, err := Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			fn(b, s)
		})
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	eachEngineBench(b, func(b *testing.B, s *Store) {
		ctx := context.Background()
		var keys []string
		for i := range 1000 {
			_, k, err := s.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "k" + strconv.Itoa(i)})
			if err != nil {
				b.Fatal(err)
			}
			keys = append(keys, k)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Authenticate(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRegister(b *testing.B) {
	eachEngineBench(b, func(b *testing.B, s *Store) {
		ctx := context.Background()
		k, _, err := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "tk", Toolkit: "crm"})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Register(ctx, Registration{KeyID: k.ID, Toolkit: "crm", ToolkitHash: "h", Language: "Go",
				Tool: tool("t"+strconv.Itoa(i%500), strconv.Itoa(i))}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
