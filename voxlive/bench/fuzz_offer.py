# ruff: noqa: E501 (SDP lines are as long as they are)
"""A real aiortc offer (audio, video, the events channel), captured once: the fuzz
runner mutates this fixed text, so a seed always gives the same inputs."""

OFFER_SDP = "\r\n".join("""
v=0
o=- 4005015090 4005015090 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1 2
a=msid-semantic:WMS *
m=audio 38128 UDP/TLS/RTP/SAVPF 96 9 0 8
c=IN IP4 127.0.0.1
a=sendrecv
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=mid:0
a=msid:731ffe1d-fbd9-4777-8f9a-09e64b8da186 34209188-4069-4d62-8beb-d4b237ead9e8
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc:454323697 cname:3217f134-6ab3-4e06-981d-d20211254fe4
a=rtpmap:96 opus/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 127.0.0.1 38128 typ host
a=end-of-candidates
a=ice-ufrag:sygJ
a=ice-pwd:Euw1J75eVf1RJopL7NaC25
a=fingerprint:sha-256 71:DE:F3:31:48:17:92:78:AA:D8:E4:FC:8B:6E:BD:36:5C:3F:94:BB:22:AF:B4:0D:6B:B9:84:0B:87:F0:F3:F0
a=fingerprint:sha-384 5B:A8:CB:C2:5E:97:A3:10:E9:45:83:22:23:03:04:ED:1E:4A:EE:CD:5C:D4:DF:5D:B8:52:CC:02:52:EE:85:70:4F:46:E1:F1:74:68:DD:99:F6:EA:F3:94:CB:53:05:66
a=fingerprint:sha-512 22:4F:68:7B:A4:82:4D:03:32:DA:C4:BE:F6:22:62:57:B7:F9:35:91:3E:55:5F:BE:FA:7F:78:6E:43:1C:41:7A:5B:F6:65:B4:5F:84:AF:19:6A:20:82:1D:DE:C8:43:D5:E0:FD:A6:B7:C7:F8:7B:FB:99:49:1B:0E:E1:4D:07:14
a=setup:actpass
m=video 34426 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102
c=IN IP4 127.0.0.1
a=sendrecv
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=mid:1
a=msid:731ffe1d-fbd9-4777-8f9a-09e64b8da186 ef0e9bde-b6f9-4c66-81b2-793cdd0595a4
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc-group:FID 2082487685 1253032773
a=ssrc:2082487685 cname:3217f134-6ab3-4e06-981d-d20211254fe4
a=ssrc:1253032773 cname:3217f134-6ab3-4e06-981d-d20211254fe4
a=rtpmap:97 VP8/90000
a=rtcp-fb:97 nack
a=rtcp-fb:97 nack pli
a=rtcp-fb:97 goog-remb
a=rtpmap:98 rtx/90000
a=fmtp:98 apt=97
a=rtpmap:99 H264/90000
a=rtcp-fb:99 nack
a=rtcp-fb:99 nack pli
a=rtcp-fb:99 goog-remb
a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:100 rtx/90000
a=fmtp:100 apt=99
a=rtpmap:101 H264/90000
a=rtcp-fb:101 nack
a=rtcp-fb:101 nack pli
a=rtcp-fb:101 goog-remb
a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:102 rtx/90000
a=fmtp:102 apt=101
a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 127.0.0.1 34426 typ host
a=end-of-candidates
a=ice-ufrag:sygJ
a=ice-pwd:Euw1J75eVf1RJopL7NaC25
a=fingerprint:sha-256 71:DE:F3:31:48:17:92:78:AA:D8:E4:FC:8B:6E:BD:36:5C:3F:94:BB:22:AF:B4:0D:6B:B9:84:0B:87:F0:F3:F0
a=fingerprint:sha-384 5B:A8:CB:C2:5E:97:A3:10:E9:45:83:22:23:03:04:ED:1E:4A:EE:CD:5C:D4:DF:5D:B8:52:CC:02:52:EE:85:70:4F:46:E1:F1:74:68:DD:99:F6:EA:F3:94:CB:53:05:66
a=fingerprint:sha-512 22:4F:68:7B:A4:82:4D:03:32:DA:C4:BE:F6:22:62:57:B7:F9:35:91:3E:55:5F:BE:FA:7F:78:6E:43:1C:41:7A:5B:F6:65:B4:5F:84:AF:19:6A:20:82:1D:DE:C8:43:D5:E0:FD:A6:B7:C7:F8:7B:FB:99:49:1B:0E:E1:4D:07:14
a=setup:actpass
m=application 54374 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 127.0.0.1
a=mid:2
a=sctp-port:5000
a=max-message-size:262144
a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 127.0.0.1 54374 typ host
a=end-of-candidates
a=ice-ufrag:sygJ
a=ice-pwd:Euw1J75eVf1RJopL7NaC25
a=fingerprint:sha-256 71:DE:F3:31:48:17:92:78:AA:D8:E4:FC:8B:6E:BD:36:5C:3F:94:BB:22:AF:B4:0D:6B:B9:84:0B:87:F0:F3:F0
a=fingerprint:sha-384 5B:A8:CB:C2:5E:97:A3:10:E9:45:83:22:23:03:04:ED:1E:4A:EE:CD:5C:D4:DF:5D:B8:52:CC:02:52:EE:85:70:4F:46:E1:F1:74:68:DD:99:F6:EA:F3:94:CB:53:05:66
a=fingerprint:sha-512 22:4F:68:7B:A4:82:4D:03:32:DA:C4:BE:F6:22:62:57:B7:F9:35:91:3E:55:5F:BE:FA:7F:78:6E:43:1C:41:7A:5B:F6:65:B4:5F:84:AF:19:6A:20:82:1D:DE:C8:43:D5:E0:FD:A6:B7:C7:F8:7B:FB:99:49:1B:0E:E1:4D:07:14
a=setup:actpass
""".strip().split("\n")) + "\r\n"
