package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a messages process the benchmark started.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed when the process has exited, with err set
	err    error
}

// start runs bin with args, its output going to <dir>/<name>.log.
func start(dir, bin, name string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// peakRSS is the process's peak resident memory (VmHWM) in bytes.
func (p *proc) peakRSS() (int64, error) { return p.statusBytes("VmHWM") }

// resetPeak sets the process's peak resident memory to what it holds now
// (Linux 4.0 and later), so that peakRSS reads the peak of what follows.
func (p *proc) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// rss is the process's resident memory now (VmRSS) in bytes.
func (p *proc) rss() (int64, error) { return p.statusBytes("VmRSS") }

// statusBytes reads a size in kB from the process's /proc status, in bytes.
func (p *proc) statusBytes(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.cmd.Process.Pid)
}

// cpuSeconds is the CPU time the process has used so far.
func (p *proc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks of USER_HZ
}

// selfCPUSeconds is the CPU time this process (the load generator) has used.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// stop asks the process to shut down gracefully and waits for it, killing it
// after a while.
func (p *proc) stop() {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady polls the process's url until it answers 200. When the process
// exits first or the time runs out, the error ends with the last lines of
// its log.
func (p *proc) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	if err := p.pollReady(ctx, url, timeout); err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name, err, p.logTail(20))
	}
	return nil
}

func (p *proc) pollReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v (last: %v)", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("exited before %s answered: %v", url, p.err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail is the last n lines the process wrote.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// dev is a running `messages dev` on free loopback ports.
type dev struct {
	*proc
	api, nats, mongo string
}

func startDev(ctx context.Context, cfg config, dir, name string) (*dev, error) {
	d := &dev{api: freeAddr(), nats: freeAddr(), mongo: freeAddr()}
	args := append([]string{"dev",
		"--data-dir", filepath.Join(dir, name+"-data"),
		"--addr", d.api, "--nats-listen", d.nats, "--mongo-listen", d.mongo,
		"--log-level", "warn"}, cfg.devFlags...)
	var err error
	d.proc, err = start(dir, cfg.bin, name, args...)
	if err != nil {
		return nil, err
	}
	if err := d.waitReady(ctx, "http://"+d.api+"/readyz", 2*time.Minute); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *dev) natsURL() string  { return "nats://" + d.nats }
func (d *dev) mongoURI() string { return "mongodb://" + d.mongo + "/" }
