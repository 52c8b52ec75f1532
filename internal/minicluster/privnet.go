package minicluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PrivateNetworkEnv is set (to the pod range) in the environment of the
// process that EnterPrivateNetwork re-executes inside the new namespaces.
const PrivateNetworkEnv = "MINICLUSTER_PRIVATE_NETWORK"

// EnterPrivateNetwork re-executes the current binary (os.Args) in new network
// and PID namespaces, the equivalent of `unshare --net --pid --fork` (plus
// --map-root-user when not root). Inside, it brings lo up and adds the route
// `local <podRange> dev lo` (like `ip route add local <podRange> dev lo`), so
// every address in podRange is a local address: processes can listen on any
// pod IP and connect to each other, and no packet leaves the namespace. There
// is no route to the outside world, so everything must be built beforehand.
//
// Call it first in TestMain:
//
//	inChild, code, err := minicluster.EnterPrivateNetwork("10.244.0.0/16")
//	if err != nil { log.Fatal(err) }
//	if !inChild { os.Exit(code) }
//	// ... now in the namespace: os.Exit(m.Run())
//
// In the original process it runs the child to completion and returns
// (false, child's exit code, nil). In the child it sets up the network,
// checks that a listener on an address of podRange works, and returns
// (true, 0, nil). The child is PID 1 of its PID namespace, so when it exits
// (or is killed, which happens when the original process dies) the kernel
// kills every process it started: nothing is left behind. SIGINT, SIGTERM,
// SIGHUP and SIGQUIT received by the original process are forwarded to it.
func EnterPrivateNetwork(podRange string) (inChild bool, exitCode int, err error) {
	ip, ipnet, err := net.ParseCIDR(podRange)
	if err != nil {
		return false, 0, fmt.Errorf("minicluster: pod range: %w", err)
	}
	if ip.To4() != nil {
		ipnet.IP = ipnet.IP.To4()
	}
	if v, ok := os.LookupEnv(PrivateNetworkEnv); ok {
		if os.Getpid() != 1 {
			return false, 0, fmt.Errorf("minicluster: %s=%s is set but this is not a fresh namespace (pid %d)", PrivateNetworkEnv, v, os.Getpid())
		}
		if err := setupPrivateNetwork(ipnet); err != nil {
			return true, 0, fmt.Errorf("minicluster: private network: %w", err)
		}
		return true, 0, nil
	}

	exe, err := os.Executable()
	if err != nil {
		return false, 0, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), PrivateNetworkEnv+"="+ipnet.String())
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWPID,
		Pdeathsig:  syscall.SIGKILL,
		// Own process group: a terminal's Ctrl-C reaches only us and is
		// forwarded once (test frameworks treat a second SIGINT as "abort").
		Setpgid: true,
	}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	onSpawnThread(func() { err = cmd.Start() })
	if err != nil {
		return false, 0, fmt.Errorf("minicluster: start child in new network namespace: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-exited:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(exited)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return false, 128 + int(ws.Signal()), nil
		}
		return false, ee.ExitCode(), nil
	}
	if err != nil {
		return false, 0, err
	}
	return false, 0, nil
}

// setupPrivateNetwork brings lo up, makes podRange local and checks it.
func setupPrivateNetwork(podRange *net.IPNet) error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	if err := linkUp("lo"); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if err := addLocalRoute(podRange, lo.Index); err != nil {
		return fmt.Errorf("ip route add local %s dev lo: %w", podRange, err)
	}
	// Check: listen on an address of the range and connect to it.
	probe := make(net.IP, len(podRange.IP))
	copy(probe, podRange.IP)
	probe[len(probe)-1] += 5
	l, err := net.Listen("tcp", net.JoinHostPort(probe.String(), "0"))
	if err != nil {
		return fmt.Errorf("listen on %s: %w", probe, err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		if c, err := l.Accept(); err == nil {
			_ = c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", l.Addr(), err)
	}
	return c.Close()
}

func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// addLocalRoute adds "local <dst> dev <ifindex> table local scope host" over
// rtnetlink.
func addLocalRoute(dst *net.IPNet, ifindex int) error {
	family, addr := unix.AF_INET, dst.IP.To4()
	if addr == nil {
		family, addr = unix.AF_INET6, dst.IP.To16()
	}
	ones, _ := dst.Mask.Size()

	attr := func(typ uint16, data []byte) []byte {
		l := unix.SizeofRtAttr + len(data)
		b := make([]byte, (l+3)&^3)
		binary.NativeEndian.PutUint16(b[0:], uint16(l))
		binary.NativeEndian.PutUint16(b[2:], typ)
		copy(b[unix.SizeofRtAttr:], data)
		return b
	}
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(ifindex))
	body := []byte{
		byte(family), byte(ones), 0, 0, // family, dst_len, src_len, tos
		unix.RT_TABLE_LOCAL, unix.RTPROT_BOOT, unix.RT_SCOPE_HOST, unix.RTN_LOCAL,
		0, 0, 0, 0, // flags
	}
	body = append(body, attr(unix.RTA_DST, addr)...)
	body = append(body, attr(unix.RTA_OIF, oif)...)

	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	msg = append(msg, body...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.RTM_NEWROUTE)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	binary.NativeEndian.PutUint32(msg[8:], 1) // seq

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if errno := int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
				return syscall.Errno(-errno)
			}
			return nil
		}
	}
	return errors.New("no netlink acknowledgement")
}
