package monitoring

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Thresholds are the alerting limits a service owner sets.
type Thresholds struct {
	// DownMinutes: no healthy target for this long fires ServiceDown.
	DownMinutes int
	// ErrorRatio: the share of 5xx responses over 5 minutes, e.g. 0.05.
	ErrorRatio float64
	// P95Seconds: the 95th percentile latency over 5 minutes.
	P95Seconds float64
	// RestartsPerHour: process restarts in an hour before RestartLoop fires.
	RestartsPerHour int
}

// Rule is one Prometheus alerting rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Group is a rule group, as a rule file and a PrometheusRule both hold them.
type Group struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Alerts are the alerts a FastAPI service owner needs, for the scrape job
// of the service (the job label its metrics carry). The metric names are the
// example app's contract (app/app/metrics.py): http_requests_total,
// http_request_duration_seconds, readiness_failures_total, database_up and
// app_start_time_seconds (the newest process start, which changes on every
// restart, with one worker or several).
func Alerts(service, job string, t Thresholds) Group {
	sel := fmt.Sprintf(`job=%q`, job)
	rule := func(name, expr string, forMinutes int, severity, summary string) Rule {
		return newRule(service, service, name, expr, forMinutes, severity, summary)
	}
	return Group{
		Name: "fastapi-infra-" + service,
		Rules: []Rule{
			rule("FastAPIServiceDown",
				fmt.Sprintf(`sum(up{%s}) == 0 or absent(up{%s})`, sel, sel), t.DownMinutes, "critical",
				fmt.Sprintf("%s has had no healthy target for %d minutes", service, t.DownMinutes)),
			rule("FastAPIReadinessFailing",
				fmt.Sprintf(`sum(increase(readiness_failures_total{%s}[5m])) > 0`, sel), 5, "warning",
				service+" answers readiness with 503 (database unreachable or schema behind the migrations)"),
			rule("FastAPIHighErrorRatio",
				fmt.Sprintf(`sum(rate(http_requests_total{%s,status=~"5.."}[5m])) / sum(rate(http_requests_total{%s}[5m])) > %s`,
					sel, sel, formatFloat(t.ErrorRatio)), 5, "critical",
				fmt.Sprintf("more than %s%% of %s's responses are 5xx", formatFloat(t.ErrorRatio*100), service)),
			rule("FastAPIHighLatencyP95",
				fmt.Sprintf(`histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{%s}[5m]))) > %s`,
					sel, formatFloat(t.P95Seconds)), 10, "warning",
				fmt.Sprintf("%s's p95 latency is above %ss", service, formatFloat(t.P95Seconds))),
			rule("FastAPIRestartLoop",
				fmt.Sprintf(`sum(changes(app_start_time_seconds{%s}[1h])) > %d`, sel, t.RestartsPerHour), 0, "warning",
				fmt.Sprintf("%s's processes restarted more than %d times in an hour", service, t.RestartsPerHour)),
			rule("FastAPIDatabaseUnreachable",
				fmt.Sprintf(`min(database_up{%s}) == 0`, sel), 2, "critical",
				service+" cannot reach its database"),
		},
	}
}

// WithLabels adds labels to every rule of a copy of g, as external labels
// would where the Prometheus is not the stack's own.
func (g Group) WithLabels(labels map[string]string) Group {
	out := Group{Name: g.Name}
	for _, r := range g.Rules {
		l := maps.Clone(r.Labels)
		maps.Copy(l, labels)
		r.Labels = l
		out.Rules = append(out.Rules, r)
	}
	return out
}

// PostgresJob is the scrape job of a service's database exporter.
func PostgresJob(service string) string { return service + "-postgres" }

// BackupMetric is the newest successful backup's time, which the database
// exporter reads from the table the backup job writes after each dump.
const BackupMetric = "fastapi_infra_backup_last_success_timestamp_seconds"

// ArchiverMetrics are PostgreSQL's pg_stat_archiver as the exporter reads
// it (exporterQueries): failures so far, the last archived and the last
// failed segment's times.
const (
	ArchiverFailedMetric   = "fastapi_infra_archiver_failed_count"
	ArchiverArchivedMetric = "fastapi_infra_archiver_last_archived_timestamp_seconds"
	ArchiverFailedAtMetric = "fastapi_infra_archiver_last_failed_timestamp_seconds"
	ArchiveWaitingMetric   = "fastapi_infra_archive_queue_oldest_waiting_seconds"
)

// ArchiveStall is how long a complete WAL segment may wait for its
// archiving before PostgresWALArchivingFailing fires: a store that does
// not answer at all makes the archive command hang (pgBackRest retries
// the connection), so no failure is counted meanwhile, and the segments
// only queue up.
const ArchiveStall = 5 * time.Minute

// DatabaseAlerts watch the service's PostgreSQL through its exporter
// (postgres_exporter, job PostgresJob): the database (or its exporter) is
// down, connections near max_connections, and, when backups are
// scheduled (backupMaxAge > 0), a newest backup older than the schedule's
// longest gap plus an hour. With archiving (an off-host repository,
// archiveStall > 0: ArchiveStall, shorter in tests), WAL archiving that
// fails (the segment last tried failed after the last that succeeded, for
// 5 minutes: a store that refuses; or three failures in 15 minutes: it
// flaps) or stalls (a complete segment has waited longer than
// archiveStall: a store that does not answer, where the archive command
// hangs and no failure is counted). Not "nothing archived for 5
// minutes": an idle database writes no WAL and archives nothing, rightly.
func DatabaseAlerts(service string, backupMaxAge, archiveStall time.Duration) []Rule {
	sel := fmt.Sprintf(`job=%q`, PostgresJob(service))
	rule := func(name, expr string, forMinutes int, severity, summary string) Rule {
		return newRule(service, service+"'s database", name, expr, forMinutes, severity, summary)
	}
	rules := []Rule{
		rule("PostgresDown", fmt.Sprintf(`min(pg_up{%s}) == 0 or absent(pg_up{%s})`, sel, sel), 1, "critical",
			service+"'s PostgreSQL does not answer its exporter (or the exporter is down)"),
		rule("PostgresConnectionsNearLimit",
			fmt.Sprintf(`sum(pg_stat_activity_count{%s}) > 0.8 * max(pg_settings_max_connections{%s})`, sel, sel), 5, "warning",
			service+"'s PostgreSQL uses more than 80% of max_connections"),
	}
	if backupMaxAge > 0 {
		limit := backupMaxAge + time.Hour
		rules = append(rules, rule("PostgresBackupTooOld",
			fmt.Sprintf(`time() - max(%s{%s}) > %d`, BackupMetric, sel, int(limit.Seconds())), 0, "warning",
			fmt.Sprintf("%s's newest database backup is older than %s hours: a scheduled backup was missed or failed", service, formatFloat(limit.Hours()))))
	}
	if archiveStall > 0 {
		rules = append(rules,
			rule("PostgresWALArchivingFailing",
				fmt.Sprintf(`max(%s{%s}) > max(%s{%s}) or max(increase(%s{%s}[15m])) >= 3`,
					ArchiverFailedAtMetric, sel, ArchiverArchivedMetric, sel, ArchiverFailedMetric, sel), 5, "critical",
				service+"'s PostgreSQL fails to archive its WAL into the off-host repository (wrong keys or CA, or the bucket gone): a restore reaches only the last archived segment, and a host loss now loses everything since"),
			// Already a duration: no `for` on top.
			rule("PostgresWALArchivingStalled",
				fmt.Sprintf(`max(%s{%s}) > %d`, ArchiveWaitingMetric, sel, int(archiveStall.Seconds())), 0, "critical",
				fmt.Sprintf("%s's PostgreSQL has a WAL segment waiting more than %s for its archiving (the off-host repository does not answer): a host loss now loses everything since", service, archiveStall)))
	}
	return rules
}

// newRule is one alert of a service; subject says in the description whose
// alert it is (the service, or the service's database).
func newRule(service, subject, name, expr string, forMinutes int, severity, summary string) Rule {
	r := Rule{
		Alert:  name,
		Expr:   expr,
		Labels: map[string]string{"severity": severity, "service": service},
		Annotations: map[string]string{
			"summary":     summary,
			"description": "fastapi-infra alert for " + subject + "; see docs/monitoring.md for what to check.",
		},
	}
	if forMinutes > 0 {
		r.For = strconv.Itoa(forMinutes) + "m"
	}
	return r
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// RuleFile renders a Prometheus rule file with the group.
func RuleFile(g Group) (string, error) {
	var b strings.Builder
	b.WriteString("# Generated by fastapi-infra (components/monitoring); changes are overwritten.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(map[string][]Group{"groups": {g}}); err != nil {
		return "", fmt.Errorf("rendering the rule file: %w", err)
	}
	return b.String(), nil
}
