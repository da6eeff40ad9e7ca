package operations

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/components/service"
	"github.com/fastapi-infra/fastapi-infra/components/singleserver"
)

// ErrNoMaintenance says the stack's proxy has no maintenance page: Traefik,
// or an nginx whose config predates it.
var ErrNoMaintenance = errors.New("the stack's proxy has no maintenance page")

// maintenanceScript runs in the proxy with the folder, the action and the
// pages as its arguments (never in the script's text): on writes both
// pages, then the switch, so no request sees the switch without a page.
const maintenanceScript = `set -e
dir=$1
grep -qs "$dir/on" /etc/nginx/fastapi-infra/nginx.conf || exit 3
case $2 in
on)
	mkdir -p "$dir"
	printf '%s' "$3" >"$dir/page.html.new" && mv "$dir/page.html.new" "$dir/page.html"
	printf '%s' "$4" >"$dir/page.json.new" && mv "$dir/page.json.new" "$dir/page.json"
	: >"$dir/on" ;;
off) rm -f "$dir/on" ;;
esac`

// Maintenance turns the proxy's maintenance page on, with message, or
// off. The proxy answers every request but /metrics with 503, Retry-After
// and the page while it is on, whether the replicas run or not; its own
// health check is unaffected. ErrNoMaintenance when the proxy has none.
// Behind nginx the page is a file the proxy checks on every request;
// behind Traefik it is a container of its own that Traefik routes to
// first (traefikMaintenance).
func (r Running) Maintenance(ctx context.Context, on bool, message string) error {
	if r.behindTraefik(ctx) {
		return r.traefikMaintenance(ctx, on, message)
	}
	action := "off"
	if on {
		action = "on"
	}
	page, pageJSON := service.MaintenancePages(message)
	proxy := r.Prefix + "-proxy"
	out, code, err := r.Engine.Exec(ctx, proxy, "sh", "-c", maintenanceScript, "maintenance", singleserver.MaintenanceDir, action, page, pageJSON)
	switch {
	case err != nil:
		return fmt.Errorf("maintenance %s in %s (is the stack up?): %w", action, proxy, err)
	case code == 3:
		return fmt.Errorf("%w: an nginx deployed before maintenance existed (run ./infra up first)", ErrNoMaintenance)
	case code != 0:
		return fmt.Errorf("maintenance %s in %s exited with code %d: %s", action, proxy, code, strings.TrimSpace(out))
	}
	return nil
}
