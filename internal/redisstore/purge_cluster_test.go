package redisstore

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startCluster starts a three-master Redis Cluster for one test and returns a client of it.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not on PATH: cannot create a cluster")
	}
	var addrs []string
	for range 3 {
		// The cluster bus listens on port+10000; pick ports below 55535 whose bus port is free.
		var port int
		for {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
			if port < 55535 {
				if bl, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
					bl.Close()
					break
				}
			}
		}
		dir := t.TempDir()
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ok := false
		for range 200 {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				ok = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !ok {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("cluster node %s did not start: %s", addr, b)
		}
		addrs = append(addrs, addr)
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { cc.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			info, err := c.ClusterInfo(context.Background()).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster not ok within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cc.ReloadState(context.Background())
	return cc
}

// TestPurgeOnCluster: the same purge on a three-master cluster, where the tenant's keys
// live on one master and its lookups on others.
func TestPurgeOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cc := startCluster(t)
	// The tenants' data must spread over more than one master, or the test proves nothing.
	masters := map[string]bool{}
	for _, k := range []string{tenantKey(victim), tenantKey(bystander), cloudIndexKey("cloud-" + victim)} {
		n, err := cc.MasterForKey(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		masters[n.Options().Addr] = true
	}
	if len(masters) < 2 {
		t.Logf("keys on %d master(s) only", len(masters))
	}
	testPurgeLeavesOnlyTheTombstone(t, cc)
}
