package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestDeclare(t *testing.T) {
	eachEngine(t, testDeclare)
}

func testDeclare(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.open(t)
	k, _, _ := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "tk", Owner: "acme"})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	key, got, err := s.Declare(ctx, Declaration{KeyID: k.ID, Toolkit: "crm", ToolkitHash: "h1", Language: "Platools",
		Tools: []Tool{tool("b", "hb"), tool("a", "ha"), tool("c", "hc")}, RegisteredAt: t0})
	if err != nil || key.Toolkit != "crm" || !reflect.DeepEqual(got, Declared{New: []string{"a", "b", "c"}}) {
		t.Fatalf("first declaration: %+v, %+v, %v", key, got, err)
	}
	// b changes, c goes, d comes, a stays as it was.
	b2 := tool("b", "hb2")
	b2.Description = "new"
	_, got, err = s.Declare(ctx, Declaration{KeyID: k.ID, Toolkit: "crm", ToolkitHash: "h2", Language: "Platools",
		Tools: []Tool{tool("a", "ha"), b2, tool("d", "hd")}, RegisteredAt: t0.Add(time.Minute)})
	if err != nil || !reflect.DeepEqual(got, Declared{New: []string{"d"}, Updated: []string{"b"}, Pruned: []string{"c"}}) {
		t.Fatalf("second declaration: %+v, %v", got, err)
	}
	s = db.open(t) // another process: what was declared is in the database
	tk, err := s.Toolkit(ctx, "acme", "crm")
	if err != nil || tk.Hash != "h2" || tk.Language != "Platools" || len(tk.Tools) != 3 {
		t.Fatalf("toolkit = %+v, %v", tk, err)
	}
	names := []string{tk.Tools[0].Name, tk.Tools[1].Name, tk.Tools[2].Name}
	if !reflect.DeepEqual(names, []string{"a", "b", "d"}) || tk.Tools[1].Description != "new" {
		t.Fatalf("tools = %+v", tk.Tools)
	}
	if !tk.Tools[0].UpdatedAt.Equal(t0) || !tk.Tools[1].UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("updated_at: a %v (unchanged: want the first declaration's), b %v", tk.Tools[0].UpdatedAt, tk.Tools[1].UpdatedAt)
	}
	// An empty declaration prunes everything and keeps the toolkit.
	_, got, err = s.Declare(ctx, Declaration{KeyID: k.ID, Toolkit: "crm"})
	if err != nil || !reflect.DeepEqual(got, Declared{Pruned: []string{"a", "b", "d"}}) {
		t.Fatalf("empty declaration: %+v, %v", got, err)
	}
	if tk, err := s.Toolkit(ctx, "acme", "crm"); err != nil || len(tk.Tools) != 0 {
		t.Fatalf("after the empty declaration: %+v, %v", tk, err)
	}
}

func TestDeclareRefusals(t *testing.T) {
	eachEngine(t, testDeclareRefusals)
}

func testDeclareRefusals(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.open(t)
	owner, _, _ := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "first"})
	if _, _, err := s.Declare(ctx, Declaration{KeyID: owner.ID, Toolkit: "crm", Tools: []Tool{tool("a", "ha")}}); err != nil {
		t.Fatal(err)
	}
	other, _, _ := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "second"})
	llm, _, _ := s.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "llm"})
	revoked, _, _ := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "gone", Toolkit: "crm"})
	s.RevokeKey(ctx, revoked.ID)
	for _, c := range []struct {
		d    Declaration
		want error
	}{
		{Declaration{KeyID: other.ID, Toolkit: "crm"}, ErrToolkitTaken},
		{Declaration{KeyID: owner.ID, Toolkit: "billing"}, ErrKeyBoundElsewhere},
		{Declaration{KeyID: llm.ID, Toolkit: "x"}, ErrWrongKind},
		{Declaration{KeyID: revoked.ID, Toolkit: "crm"}, ErrRevokedKey},
		{Declaration{KeyID: "nope", Toolkit: "x"}, ErrInvalidKey},
	} {
		if _, _, err := s.Declare(ctx, c.d); !errors.Is(err, c.want) {
			t.Errorf("Declare(%+v) = %v; want %v", c.d, err, c.want)
		}
	}
	if _, _, err := s.Declare(ctx, Declaration{KeyID: owner.ID, Toolkit: "crm", Tools: []Tool{tool("a", ""), tool("a", "")}}); err == nil {
		t.Error("a tool declared twice was accepted")
	}
	if _, _, err := s.Declare(ctx, Declaration{KeyID: other.ID, Toolkit: "bad/name"}); err == nil {
		t.Error("a bad toolkit name was accepted")
	}
	// Nothing refused changed anything.
	if tk, _ := s.Toolkit(ctx, DefaultOwner, "crm"); len(tk.Tools) != 1 {
		t.Errorf("crm = %+v", tk)
	}
	if k, _ := s.KeyByID(ctx, other.ID); k.Toolkit != "" {
		t.Errorf("a refused key got bound to %q", k.Toolkit)
	}
}
