package deploy_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// natsConfigs loads every NATS configuration file with the server's own
// parser.
func natsConfigs(t *testing.T) map[string]*server.Options {
	t.Helper()
	paths, err := filepath.Glob("nats/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("found %d NATS configurations, want one for each of 3 nodes", len(paths))
	}
	configs := map[string]*server.Options{}
	for _, p := range paths {
		opts, err := server.ProcessConfigFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		configs[strings.TrimSuffix(filepath.Base(p), ".conf")] = opts
	}
	return configs
}

// TestNATSConfigs checks that each node's configuration names the node as its
// file does, runs JetStream on a file store fsynced before every
// acknowledgement, and routes to every node of one cluster on the ports the
// compose stack uses.
func TestNATSConfigs(t *testing.T) {
	configs := natsConfigs(t)
	for name, o := range configs {
		if o.ServerName != name {
			t.Errorf("%s: server_name %q, want %q", name, o.ServerName, name)
		}
		if !o.JetStream || o.StoreDir == "" {
			t.Errorf("%s: JetStream %v with store %q, want on, with a store directory", name, o.JetStream, o.StoreDir)
		}
		if o.Port != 4222 || o.HTTPPort != 8222 || o.Cluster.Port != 6222 {
			t.Errorf("%s: ports client %d, monitoring %d, cluster %d; want 4222, 8222, 6222", name, o.Port, o.HTTPPort, o.Cluster.Port)
		}
		if o.Cluster.Name != "messages" {
			t.Errorf("%s: cluster name %q, want messages", name, o.Cluster.Name)
		}
		var routes []string
		for _, r := range o.Routes {
			routes = append(routes, r.Host)
		}
		for peer := range configs {
			if !slices.Contains(routes, peer+":6222") {
				t.Errorf("%s: routes %v lack %s:6222", name, routes, peer)
			}
		}
		// An acknowledged append must survive a power loss: fsynced before
		// the acknowledgement, not within the default two minutes.
		if !o.SyncAlways {
			t.Errorf("%s: sync_interval %v, want always", name, o.SyncInterval)
		}
		if o.LameDuckDuration <= o.LameDuckGracePeriod {
			t.Errorf("%s: lame duck %v, grace period %v: want the duration past the grace period", name, o.LameDuckDuration, o.LameDuckGracePeriod)
		}
	}
}

// TestNATSConfigsFormCluster starts the three configurations in the embedded
// server, on loopback ports and temporary stores instead of their hosts and
// volumes, and checks that they elect a JetStream leader and keep a stream at
// 3 replicas.
func TestNATSConfigsFormCluster(t *testing.T) {
	var servers []*server.Server
	for attempt := 1; servers == nil; attempt++ {
		var err error
		if servers, err = startNATSConfigs(t); err != nil && attempt == 3 {
			t.Fatal(err)
		} else if err != nil {
			t.Logf("attempt %d: %v; again on other ports", attempt, err)
		}
	}
	_, js := testkit.JetStream(t, servers[0])
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: "CHECK", Subjects: []string{"check.>"}, Replicas: 3, Storage: jetstream.FileStorage,
		})
		if err != nil {
			return err
		}
		if _, err := js.Publish(ctx, "check.1", []byte("x")); err != nil {
			return err
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if c := info.Cluster; c == nil || c.Name != "messages" || c.Leader == "" || len(c.Replicas) != 2 {
			return fmt.Errorf("stream cluster %+v, want a leader and 2 replicas in cluster messages", c)
		}
		return nil
	})
}

// startNATSConfigs starts the three configurations on loopback ports that
// were free a moment ago, and returns them once each takes connections. A
// port taken meanwhile by another process leaves its node never ready: the
// error then says which, and the nodes are stopped.
func startNATSConfigs(t *testing.T) ([]*server.Server, error) {
	configs := natsConfigs(t)
	ports := map[string]int{}
	for name := range configs {
		ports[name] = freePort(t)
	}
	var servers []*server.Server
	var names []string
	stop := func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	for name, o := range configs {
		o.Host, o.Port, o.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
		o.StoreDir = t.TempDir()
		o.Cluster.Host, o.Cluster.Port = "127.0.0.1", ports[name]
		for _, r := range o.Routes {
			host, _, _ := net.SplitHostPort(r.Host)
			p, ok := ports[host]
			if !ok {
				t.Fatalf("%s: route to %s, which is no node", name, r.Host)
			}
			r.Host = "127.0.0.1:" + strconv.Itoa(p)
		}
		o.NoLog, o.NoSigs = true, true
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		go s.Start()
		servers, names = append(servers, s), append(names, name)
	}
	for i, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			stop()
			return nil, fmt.Errorf("%s: not ready for connections within 20s", names[i])
		}
	}
	t.Cleanup(stop)
	return servers, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
