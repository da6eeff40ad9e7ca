package service

import (
	"encoding/json"
	"html"
	"strings"
)

// DefaultMaintenanceMessage is the maintenance page's text when none is
// given.
const DefaultMaintenanceMessage = "The service is down for maintenance and will be back shortly."

// MaintenancePages are the page every architecture answers with (503,
// Retry-After) while maintenance is on: HTML, and JSON for clients that
// accept it.
func MaintenancePages(message string) (page, pageJSON string) {
	if strings.TrimSpace(message) == "" {
		message = DefaultMaintenanceMessage
	}
	body, _ := json.Marshal(map[string]string{"status": "maintenance", "message": message})
	return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Maintenance</title></head>\n" +
		"<body><h1>Maintenance</h1><p>" + html.EscapeString(message) + "</p></body></html>\n", string(body) + "\n"
}
