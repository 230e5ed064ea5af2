// Command kstatus prints what the kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus/status)
// computes for Kubernetes objects: the reading Flux, Helm 4's --wait and kstatus-based tools
// make of our status. It exists so that tests ask the real library instead of a port.
//
// Input on stdin: one JSON object, a JSON array of objects, a List (an object with "items"),
// or a stream of any of these. Output: one JSON line per object, in input order:
//
//	{"kind":"Image","namespace":"ns","name":"x","status":"InProgress","message":"..."}
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
}

func run(in io.Reader, out io.Writer) error {
	decoder := json.NewDecoder(bufio.NewReader(in))
	// Numbers stay json.Number so that integers reach the library as int64, as they do from
	// the API machinery: status.observedGeneration read as a float64 would be an error there.
	decoder.UseNumber()
	writer := bufio.NewWriter(out)
	defer writer.Flush()
	encoder := json.NewEncoder(writer)
	for {
		var value any
		err := decoder.Decode(&value)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading JSON from stdin: %w", err)
		}
		objects, err := objectsOf(normalize(value))
		if err != nil {
			return err
		}
		for _, object := range objects {
			u := &unstructured.Unstructured{Object: object}
			computed, err := status.Compute(u)
			if err != nil {
				return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
			}
			line := result{
				Kind:      u.GetKind(),
				Namespace: u.GetNamespace(),
				Name:      u.GetName(),
				Status:    computed.Status.String(),
				Message:   computed.Message,
			}
			if err := encoder.Encode(line); err != nil {
				return err
			}
		}
	}
}

// objectsOf flattens one decoded JSON value into the objects it holds.
func objectsOf(value any) ([]map[string]any, error) {
	switch v := value.(type) {
	case []any:
		var objects []map[string]any
		for _, item := range v {
			found, err := objectsOf(item)
			if err != nil {
				return nil, err
			}
			objects = append(objects, found...)
		}
		return objects, nil
	case map[string]any:
		if items, ok := v["items"].([]any); ok {
			return objectsOf(items)
		}
		return []map[string]any{v}, nil
	default:
		return nil, fmt.Errorf("expected a JSON object, an array or a List, got %T", value)
	}
}

// normalize turns json.Number into int64 where it is an integer (else float64), recursively.
func normalize(value any) any {
	switch v := value.(type) {
	case map[string]any:
		for key, item := range v {
			v[key] = normalize(item)
		}
		return v
	case []any:
		for i, item := range v {
			v[i] = normalize(item)
		}
		return v
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	default:
		return value
	}
}
