package annotations

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCustomErrors(t *testing.T) {
	tests := map[string]struct {
		in      map[string]string
		want    CustomErrors
		wantErr string
	}{
		"codes sorted and unique": {in: map[string]string{n + "custom-http-errors": "503, 404,503 ,500"}, want: CustomErrors{Codes: []int{404, 500, 503}}},
		"default backend":         {in: map[string]string{n + "default-backend": " pages "}, want: CustomErrors{DefaultBackend: "pages"}},
		"portico wins":            {in: map[string]string{n + "default-backend": "a", "portico.dev/default-backend": "b"}, want: CustomErrors{DefaultBackend: "b"}},
		"code below 400":          {in: map[string]string{n + "custom-http-errors": "302"}, wantErr: n + "custom-http-errors"},
		"code above 599":          {in: map[string]string{n + "custom-http-errors": "404,600"}, wantErr: n + "custom-http-errors"},
		"not a number":            {in: map[string]string{n + "custom-http-errors": "abc"}, wantErr: n + "custom-http-errors"},
		"empty list":              {in: map[string]string{n + "custom-http-errors": " , "}, wantErr: n + "custom-http-errors"},
		"namespaced service":      {in: map[string]string{n + "default-backend": "other/pages"}, wantErr: n + "default-backend"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseMap(tc.in)
			if tc.wantErr != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Annotation != tc.wantErr || ae.Reason != ReasonInvalidAnnotation {
					t.Fatalf("error = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.CustomErrors); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(got.Warnings) != 0 {
				t.Errorf("warnings %v", got.Warnings)
			}
			if s := DefaultBackendService(tc.in); s != tc.want.DefaultBackend {
				t.Errorf("DefaultBackendService = %q, want %q", s, tc.want.DefaultBackend)
			}
		})
	}
}
