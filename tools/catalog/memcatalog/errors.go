package memcatalog

import (
	"errors"
	"fmt"
	"net/http"
)

// Error names Backstage's @backstage/errors uses in response bodies.
const (
	NameInputError          = "InputError"
	NameAuthenticationError = "AuthenticationError"
	NameNotAllowedError     = "NotAllowedError"
	NameNotFoundError       = "NotFoundError"
)

// apiError is an error that maps to a Backstage error response.
type apiError struct {
	name    string
	status  int
	message string
}

func (e *apiError) Error() string { return "memcatalog: " + e.name + ": " + e.message }

func inputError(format string, args ...any) error {
	return &apiError{name: NameInputError, status: http.StatusBadRequest, message: fmt.Sprintf(format, args...)}
}

func notFoundError(format string, args ...any) error {
	return &apiError{name: NameNotFoundError, status: http.StatusNotFound, message: fmt.Sprintf(format, args...)}
}

func authError(msg string) error {
	return &apiError{name: NameAuthenticationError, status: http.StatusUnauthorized, message: msg}
}

// errorBody is Backstage's serialised error response.
type errorBody struct {
	Error struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
	Request struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
	Response struct {
		StatusCode int `json:"statusCode"`
	} `json:"response"`
}

func writeError(w http.ResponseWriter, r *http.Request, relURL string, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{name: "Error", status: http.StatusInternalServerError, message: err.Error()}
	}
	var body errorBody
	body.Error.Name = ae.name
	body.Error.Message = ae.message
	body.Request.Method = r.Method
	body.Request.URL = relURL
	body.Response.StatusCode = ae.status
	b, encErr := encodeJSON(body)
	if encErr != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(ae.status)
	_, _ = w.Write(b)
}
