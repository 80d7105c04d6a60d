package server

import (
	"reflect"
	"testing"
)

// decodeLLMMessage makes a message's strings of one allocation: each
// field gets its own text, a repeated key's last value wins (null too, as
// with encoding/json), and a message decoded into the same (pooled) one
// keeps nothing of the one before.
func TestDecodeLLMMessageStrings(t *testing.T) {
	var m llmMessage
	msg := `{"type":"task_request","api_key":"k1","toolkit_id":"kit","auth_token":"tok","auth_token":null,` +
		`"external_user_id":"u\"1","payload":{"function":"fn","tool_call_id":"c1","tool_call_id":"c2","auth_token":"pt","external_user_id":"pu"}}`
	if err := decodeLLMMessage([]byte(msg), &m); err != nil {
		t.Fatal(err)
	}
	want := llmMessage{Type: "task_request", APIKey: "k1", ToolkitID: "kit", AuthToken: "", ExternalUserID: `u"1`,
		Payload: taskPayload{Function: "fn", ToolCallID: "c2", AuthToken: "pt", ExternalUserID: "pu"}}
	check := func(got, want llmMessage) {
		t.Helper()
		got.texts, got.RequestID, got.Payload.Parameters = stringFields{}, nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v, want %+v", got, want)
		}
	}
	check(m, want)
	m = llmMessage{texts: m.texts}
	if err := decodeLLMMessage([]byte(`{"type":"task_request","toolkit_id":"other","payload":{"function":"g"}}`), &m); err != nil {
		t.Fatal(err)
	}
	check(m, llmMessage{Type: "task_request", ToolkitID: "other", Payload: taskPayload{Function: "g"}})
	if err := decodeLLMMessage([]byte(`{"toolkit_id":5}`), &m); err == nil || err.Error() != "toolkit_id: expected string, got 5" {
		t.Fatalf("a number for a string: %v", err)
	}
}

// A taskList takes its tasks off in any order, and a task not on it
// (or taken off already) leaves it as it is.
func TestTaskList(t *testing.T) {
	var l taskList
	ts := []*task{{}, {}, {}, {}}
	for _, x := range ts {
		l.add(x)
	}
	l.remove(ts[2]) // middle
	l.remove(ts[3]) // head
	l.remove(ts[3]) // again
	l.remove(&task{})
	var got []*task
	for x := l.head; x != nil; x = x.onConn.next {
		got = append(got, x)
	}
	if len(got) != 2 || got[0] != ts[1] || got[1] != ts[0] || ts[0].onConn.prev != ts[1] {
		t.Fatalf("list after removals: %v", got)
	}
	l.remove(ts[0]) // tail
	l.remove(ts[1])
	if l.head != nil || l.n != 0 {
		t.Fatal("the list is not empty")
	}
}
