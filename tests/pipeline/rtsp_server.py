"""A localhost RTSP server for the source tests: GStreamer's gst-rtsp-server (Debian
`gir1.2-gst-rtsp-server-1.0`, `gstreamer1.0-plugins-good`), run by the system Python that has
PyGObject. It loops a folder of JPEG frames as a live MJPEG stream at rtsp://127.0.0.1:PORT/face.

    /usr/bin/python3 tests/pipeline/rtsp_server.py PORT 'frames/%03d.jpg' FPS
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    port, pattern, fps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( multifilesrc location="{pattern}" loop=true index=0 '
        f'caps="image/jpeg,framerate={fps}/1" ! jpegparse ! rtpjpegpay name=pay0 pt=26 )'
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/face", factory)
    if server.attach(None) == 0:
        print("cannot bind", flush=True)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
