// Command check calls the tools of package gentest through
// runtime.Toolkit.Invoke with valid and invalid params and prints what
// comes back.
package main

import (
	"context"
	"errors"
	"fmt"

	"example.com/gentest"
	"github.com/atpgo/atp/runtime"
)

func main() {
	tk := runtime.NewToolkit("gentest")
	if err := tk.Add(gentest.ATPTools()...); err != nil {
		panic(err)
	}
	if err := tk.Add((&gentest.Store{Prefix: "s-"}).ATPTools()...); err != nil {
		panic(err)
	}
	for _, t := range tk.Tools() {
		fmt.Printf("tool %s params=%v required=%v auth=%q/%q/%q token=%v hints=%+v timeout=%s output=%v\n",
			t.Name, t.Params, t.RequiredParams, t.AuthProvider, t.AuthType, t.AuthWith, t.NeedsAuthToken, t.Hints, t.Timeout, t.OutputSchema != nil)
	}
	call := func(tool, params string, opts ...runtime.InvokeOption) {
		res, err := tk.Invoke(context.Background(), tool, []byte(params), opts...)
		var verr *runtime.ValidationError
		switch {
		case errors.As(err, &verr):
			fmt.Printf("%s %s\n  invalid:\n", tool, params)
			for _, p := range verr.Problems {
				fmt.Printf("    %s\n", p)
			}
		case err != nil:
			fmt.Printf("%s %s\n  error: %v\n", tool, params, err)
		default:
			fmt.Printf("%s %s\n  ok: %s\n", tool, params, res)
		}
	}
	tok := runtime.WithAuthToken("t0k3n")

	call("greet", `{"name":"Ada","times":2}`)
	call("greet", `{"name":"Ada"}`)
	call("greet", `{"times":"two","nmae":"Ada"}`)
	call("greet", `{"name":"","times":9}`)
	call("greet", `{"name":"Ada","times":2.5}`)
	call("greet", `{"name":"Ada","name":"Bob"}`)
	call("greet", `{"name":"Ada","times":"2"}`, runtime.WithStringCoercion())
	call("greet", `{"name":null}`)
	call("greet", `{"name":"boom"}`)
	call("greet", `[1]`)
	call("greet", `{"name":`)
	call("ping", ``)
	call("ping", `{"x":1}`)

	call("get_forecast", `{"location":{"city":"Paris","country":"FR"},"days":3}`)
	call("get_forecast", `{"location":{"city":"Paris"},"days":1,"units":"fahrenheit","tags":["a","b"],"since":"2026-11-21T05:05:00+01:00"}`)
	call("get_forecast", `{"location":{"country":"fr","zip":1},"days":0,"units":"kelvin","tags":["a","",3,"d"],"since":"yesterday"}`)
	call("get_forecast", `{"location":"Paris","days":"three"}`)
	call("get_forecast", `{"location":{"city":"Paris"},"days":3,"since":null}`)

	call("kitchen", `{"id":"k1","tree":{"label":"a"}}`)
	call("kitchen", `{"id":"k1","tree":{"label":"a"}}`, tok)
	call("kitchen", `{"id":"k2","page":2,"priority":2,"tree":{"label":"a","children":[{"label":"b"},null,{"label":"c","children":[{"label":"d"}]}]},`+
		`"items":[{"name":"x","qty":3}],"labels":{"celsius":1},"point":[1.5,-2],"blob":"aGk=","wait":"1h30m","extra":{"k":[1,true]},"raw":[1, 2],`+
		`"level":"high","price":"12.50","limit":5,"note":null,"where":{"x":1,"y":2},"codes":["a","b"],"ratio":0.75,"meta":{"m":[1,-2]}}`, tok)
	call("kitchen", `{"id":7,"page":0,"priority":3,"tree":{"label":"a","children":[{"lable":"x"}]},`+
		`"items":[{"name":"x","qty":300},{}],"labels":{"kelvin":1},"point":[1,2,3],"blob":"%%%","wait":"soon","level":"mid","price":true,`+
		`"limit":null,"note":5,"where":{"x":1.5},"codes":["a","a","B"],"ratio":0,"meta":{"m":[40000]}}`, tok)
	call("kitchen", `{"id":"k3","tree":{"label":"a"},"codes":["a",1,2],"ratio":0.3,"point":[1],"price":12}`, tok)

	call("kitchen", `{"id":"k4","tree":{"label":"a"},"codes":["a","b","a"],"limit":null,"note":"n","wait":"-1.5h","extra":null,"raw":{"a":[]}}`, tok)

	call("limits", `{}`)
	call("limits", `{"tiny":-128,"count":7,"big":1099511627776,"half":2,"step":-10,"scale":0.5,"mode":3,"code":"AB",`+
		`"on":false,"factor":0,"grid":[[1,2],[3,4]],"tags":["x"],"words":[],"when":"2026-11-21"}`)
	call("limits", `{"tiny":100,"count":-1,"big":1099511627777,"half":1,"step":7,"scale":0.25,"mode":2,"code":"a",`+
		`"on":"yes","factor":"x","grid":[[1],[1,2,3]],"tags":[],"words":"w","when":"21/11/2026"}`)
	call("limits", `{"tiny":1000,"half":1.5,"code":7,"grid":[[1,2],[3,4],[5,6]]}`)
	call("limits", `{"picks":["ab"],"scores":[],"refs":["xy",null],"units":["celsius"],"pair":[0.5,1],"labels":["#a"],"waits":["2s"],"codes":["BB"],"box":[0,5]}`)
	call("limits", `{"picks":["ab","B","abcd","x"],"scores":[0,6,"3"],"refs":["x",null,5],"units":["fahrenheit"],"pair":[0,1],`+
		`"labels":["a","#b"],"waits":["soon"],"codes":["CC"],"box":[-1,2]}`)

	call("echo", `{"note":"ab","count":2}`)
	call("echo", `{"note":"ab","count":-1}`)
	call("echo", `{"note":"ab","count":70000}`)
	call("fail", `{}`)
}
