//go:build chaos

package chaos

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/connect"
)

// The binary on a three-master Redis Cluster (SB_REDIS_ADDRS): install with its index keys,
// reports with files carried to delivered. Every multi-key script must keep its keys in one
// slot through hash tags; a CROSSSLOT error anywhere in the service log fails the test.
func TestRedisCluster(t *testing.T) {
	var nodes []*redisProc
	var addrs []string
	for range 3 {
		n := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--appendonly", "no")
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr())
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if !waitFor(20*time.Second, func() bool {
		for _, n := range nodes {
			if !strings.Contains(n.cli("CLUSTER", "INFO"), "cluster_state:ok") {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("cluster not ok within 20 s: %s", nodes[0].cli("CLUSTER", "INFO"))
	}

	e := newEnv(t, map[string]string{"SB_REDIS_ADDRS": strings.Join(addrs, ",")})
	e.installExtra = map[string]any{
		"cloudId":        "00000000-0000-4000-8000-0000000000c9",
		"installationId": "ari:cloud:ecosystem::installation/00000000-0000-4000-8000-000000000009",
	}
	svc := e.start()
	e.install(svc)
	if code, _ := readyz(svc.base); code != http.StatusOK {
		t.Fatalf("/readyz on the cluster answered %d", code)
	}

	var ids []filed
	for i := range 6 {
		f := e.fileReport(svc.base, fmt.Sprintf("cluster-%02d", i), map[string][]byte{
			"console.txt": []byte(strings.Repeat("console line\n", 10)),
		})
		if f.status != http.StatusAccepted {
			t.Fatalf("%s answered %d (%v)", f.summary, f.status, f.err)
		}
		ids = append(ids, f)
	}
	if !waitFor(60*time.Second, func() bool {
		for _, f := range ids {
			if st, _ := e.reportState(svc.base, f.id); st != "delivered" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("reports not delivered within 60 s on the cluster:\n%s", tail(svc.log.String(), 4000))
	}
	reqs := e.requestsBySummary()
	for _, f := range ids {
		if n := len(reqs[f.summary]); n != 1 {
			t.Errorf("%s: %d requests; want 1", f.summary, n)
		}
	}
	e.lifecycle(svc, "uninstalled", connect.PathUninstalled)
	log := svc.log.String()
	if strings.Contains(log, "CROSSSLOT") {
		t.Fatalf("CROSSSLOT in the service log:\n%s", tail(log, 6000))
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("error in the service log on the cluster: %s", line)
		}
	}
	// Keys landed on more than one master, so the test did use the cluster as one.
	used := 0
	for _, n := range nodes {
		if k := n.cli("DBSIZE"); k != "(integer) 0" && k != "0" {
			used++
		}
	}
	t.Logf("cluster: %d reports delivered once each; keys on %d of 3 masters; no CROSSSLOT in the service log", len(ids), used)
	if used < 2 {
		t.Errorf("keys on %d master(s) only; the cluster was not exercised", used)
	}
}
