package cloudevent_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/switchyard-io/switchyard/cloudevent"
)

func ExampleDecodeStructured() {
	ev, err := cloudevent.DecodeStructured([]byte(`{
		"specversion": "1.0",
		"id": "A234-1234-1234",
		"source": "/mycontext",
		"type": "com.example.someevent",
		"comexampleextension1": "value",
		"data": {"appinfoA": "abc"}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	ext, _ := cloudevent.Attribute(ev, "comexampleextension1")
	fmt.Println(ev.GetType(), ext, ev.GetTextData())
	// Output: com.example.someevent value {"appinfoA": "abc"}
}

func ExampleDecodeBatch() {
	_, err := cloudevent.DecodeBatch([]byte(`[
		{"specversion": "1.0", "id": "1", "source": "/s", "type": "t"},
		{"specversion": "1.0", "id": "2", "type": "t"},
		{"specversion": "1.0", "id": "3", "source": "/s", "type": "t", "time": "yesterday"}
	]`), 0)
	fmt.Println(err)
	fmt.Println(errors.Is(err, cloudevent.ErrMissingAttribute))
	// Output:
	// event[1]: missing required attribute "source"
	// event[2]: attribute "time": not an RFC 3339 timestamp: "yesterday"
	// true
}

func ExampleReadRequest() {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"temperature": 21.5}`))
	r.Header.Set("ce-specversion", "1.0")
	r.Header.Set("ce-id", "42")
	r.Header.Set("ce-source", "/sensors/tn-1234567")
	r.Header.Set("ce-type", "com.example.sensor.reading")
	r.Header.Set("ce-subject", "room%20101")
	r.Header.Set("Content-Type", "application/json")

	evs, mode, err := cloudevent.ReadRequest(r, cloudevent.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	subject, _ := cloudevent.Attribute(evs[0], cloudevent.AttrSubject)
	fmt.Println(mode, evs[0].GetId(), subject, evs[0].GetTextData())
	// Output: binary 42 room 101 {"temperature": 21.5}
}

func ExampleWriteBinary() {
	ev, _ := cloudevent.DecodeStructured([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t",` +
		`"subject":"Euro € 😀","datacontenttype":"text/plain","data":"hello"}`))
	h := http.Header{}
	body := cloudevent.WriteBinary(ev, h)
	fmt.Println(h.Get("ce-subject"))
	fmt.Println(h.Get("Content-Type"), string(body))
	// Output:
	// Euro%20%E2%82%AC%20%F0%9F%98%80
	// text/plain hello
}
