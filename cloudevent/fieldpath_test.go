package cloudevent

import "testing"

func TestProtoField(t *testing.T) {
	for attr, want := range map[string]string{
		"":                "",
		"id":              "id",
		"source":          "source",
		"specversion":     "spec_version",
		"type":            "type",
		"subject":         `attributes["subject"]`,
		"datacontenttype": `attributes["datacontenttype"]`,
		"time":            `attributes["time"]`,
		"myext":           `attributes["myext"]`,
		"Bad Name":        `attributes["Bad Name"]`,
		`q"`:              `attributes["q\""]`,
		"data":            "data",
		"data_base64":     "data",
	} {
		if got := ProtoField(attr); got != want {
			t.Errorf("ProtoField(%q) = %s, want %s", attr, got, want)
		}
	}
}
