import subprocess
import sys
import textwrap

from conftest import APP_DIR


def test_workers_add_up_in_multiprocess_mode(tmp_path):
    """Two worker processes' counters are summed in one scrape."""
    script = textwrap.dedent("""
        import multiprocessing, sys
        def work():
            from app import metrics
            metrics.requests.labels("GET", "/x", "200").inc()
            metrics.mark_started()
        if __name__ == "__main__":
            ps = [multiprocessing.Process(target=work) for _ in range(2)]
            [p.start() for p in ps]; [p.join() for p in ps]
            from app import metrics
            body, _ = metrics.render()
            sys.stdout.write(body.decode())
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=APP_DIR, capture_output=True, text=True, check=True,
                         env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout
    assert 'http_requests_total{method="GET",route="/x",status="200"} 2.0' in out
    assert "app_start_time_seconds" in out
