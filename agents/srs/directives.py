"""Directive names SRS accepts in srs.conf, level by level, for SRS 4, 5, 6 and 7.

Pure data, read from each release's `SrsConfig::check_normal_config` (SRS 4.0.271,
5.0.213, 6.0.155, 7.0.18). A level is a dotted block path ("" is the root,
"vhost.hls" the hls block of a vhost); SRS checks the children of exactly these
levels and of no others (e.g. `vhost.hds`, `http_api.https`, `rtc_server.tcp` and the
insides of `ingest` go unchecked), and of singleton blocks only the first one.
The checker follows SRS 6 (`CHECKED`); the other versions serve to say, when SRS 6
rejects a name, which SRS release would take it.

SRS also rewrites older spellings before it checks (`srs_config_transform_vhost`);
the names below `LEGACY_*` are accepted that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

Levels = Mapping[str, frozenset[str]]


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


SRS4: Levels = {
    "": _names(
        "asprocess auto_reload_for_docker chunk_size circuit_breaker daemon "
        "disable_daemon_for_docker empty_ip_ok ff_log_dir ff_log_level first_wait_for_qlv "
        "force_grace_quit grace_final_wait grace_start_wait heartbeat http_api http_server "
        "in_docker inotify_auto_reload is_full listen max_connections pid pithy_print_ms "
        "query_latest_version rtc_server server_id srs_log_file srs_log_level srs_log_tank "
        "srt_server stats stream_caster tcmalloc_release_rate utc_time vhost work_dir"
    ),
    "http_api": _names("crossdomain enabled https listen raw_api"),
    "http_api.raw_api": _names("allow_query allow_reload allow_update enabled"),
    "http_server": _names("crossdomain dir enabled https listen"),
    "srt_server": _names(
        "connect_timeout default_app enabled latency listen maxbw mix_correct mss "
        "payloadsize peerlatency recvbuf recvlatency sei_filter sendbuf tlpkdrop"
    ),
    "heartbeat": _names("device_id enabled interval summaries url"),
    "stats": _names("disk enabled network"),
    "rtc_server": _names(
        "api_as_candidates black_hole candidate dir ecdsa enabled encrypt ip_family "
        "keep_api_domain listen merge_nalus resolve_api_domain reuseport "
        "use_auto_detect_network_ip"
    ),
    "stream_caster": _names(
        "ack_timeout auto_play enabled host invite_port_fixed keepalive_timeout listen "
        "query_catalog_interval realm serial"
    ),
    "vhost": _names(
        "bandcheck chunk_size cluster dash dvr enabled exec forward hds hls http_hooks "
        "http_remux http_static in_ack_size ingest min_latency out_ack_size play publish "
        "refer rtc security tcp_nodelay transcode"
    ),
    "vhost.dvr": _names(
        "dvr_apply dvr_duration dvr_path dvr_plan dvr_wait_keyframe enabled time_jitter"
    ),
    "vhost.refer": _names("all enabled play publish"),
    "vhost.exec": _names("enabled publish"),
    "vhost.play": _names(
        "atc atc_auto gop_cache mix_correct mw_latency mw_msgs queue_length "
        "reduce_sequence_header send_min_interval time_jitter"
    ),
    "vhost.cluster": _names(
        "coworkers debug_srs_upnode mode origin origin_cluster token_traverse vhost"
    ),
    "vhost.publish": _names("firstpkt_timeout mr mr_latency normal_timeout parse_sps"),
    "vhost.ingest": _names("enabled engine ffmpeg input"),
    "vhost.http_static": _names("dir enabled mount"),
    "vhost.http_remux": _names("enabled fast_cache mount"),
    "vhost.dash": _names(
        "dash_fragment dash_mpd_file dash_path dash_timeshift dash_update_period enabled"
    ),
    "vhost.hls": _names(
        "enabled hls_acodec hls_aof_ratio hls_cleanup hls_dispose hls_dts_directly "
        "hls_entry_prefix hls_fragment hls_fragments_per_key hls_key_file hls_key_file_path "
        "hls_key_url hls_keys hls_m3u8_file hls_mount hls_nb_notify hls_on_error hls_path "
        "hls_storage hls_td_ratio hls_ts_file hls_ts_floor hls_vcodec hls_wait_keyframe "
        "hls_window"
    ),
    "vhost.http_hooks": _names(
        "enabled on_close on_connect on_dvr on_hls on_hls_notify on_play on_publish on_stop "
        "on_unpublish"
    ),
    "vhost.forward": _names("destination enabled"),
    "vhost.security": _names("allow deny enabled"),
    "vhost.transcode": _names("enabled engine ffmpeg"),
    "vhost.transcode.engine": _names(
        "abitrate achannels acodec aparams asample_rate enabled iformat oformat output "
        "perfile vbitrate vcodec vfilter vfps vheight vparams vpreset vprofile vthreads "
        "vwidth"
    ),
    "vhost.bandcheck": _names("enabled interval key limit_kbps"),
    "vhost.rtc": _names(
        "aac bframe drop_for_pt dtls_role dtls_version enabled keep_bframe nack "
        "nack_no_copy pli_for_rtmp rtc_to_rtmp rtmp_to_rtc stun_strict_check stun_timeout "
        "twcc"
    ),
}

SRS5: Levels = {
    "": _names(
        "asprocess auto_reload_for_docker chunk_size circuit_breaker daemon "
        "disable_daemon_for_docker empty_ip_ok exporter ff_log_dir ff_log_level "
        "first_wait_for_qlv force_grace_quit grace_final_wait grace_start_wait heartbeat "
        "http_api http_server in_docker inotify_auto_reload is_full listen max_connections "
        "pid pithy_print_ms query_latest_version rtc_server server_id srs_log_file "
        "srs_log_level srs_log_level_v2 srs_log_tank srt_server stats stream_caster "
        "tcmalloc_release_rate tencentcloud_apm tencentcloud_cls threads utc_time vhost "
        "work_dir"
    ),
    "http_api": _names("auth crossdomain enabled https listen raw_api"),
    "http_api.raw_api": _names("allow_query allow_reload allow_update enabled"),
    "http_api.auth": _names("enabled password username"),
    "http_server": _names("crossdomain dir enabled https listen"),
    "srt_server": _names(
        "connect_timeout default_app enabled latency listen maxbw mix_correct mss "
        "passphrase payloadsize pbkeylen peerlatency recvbuf recvlatency sei_filter sendbuf "
        "tlpktdrop tsbpdmode"
    ),
    "heartbeat": _names("device_id enabled interval summaries url"),
    "stats": _names("disk enabled network"),
    "rtc_server": _names(
        "api_as_candidates black_hole candidate dir ecdsa enabled encrypt ip_family "
        "keep_api_domain listen merge_nalus protocol resolve_api_domain reuseport tcp "
        "use_auto_detect_network_ip"
    ),
    "exporter": _names("enabled label listen tag"),
    "stream_caster": _names("caster enabled listen output sip"),
    "stream_caster.sip": _names("candidate enabled listen reinvite timeout"),
    "vhost": _names(
        "bandcheck chunk_size cluster dash dvr enabled exec forward hds hls http_hooks "
        "http_remux http_static in_ack_size ingest min_latency out_ack_size play publish "
        "refer rtc security srt tcp_nodelay transcode"
    ),
    "vhost.dvr": _names(
        "dvr_apply dvr_duration dvr_path dvr_plan dvr_wait_keyframe enabled time_jitter"
    ),
    "vhost.refer": _names("all enabled play publish"),
    "vhost.exec": _names("enabled publish"),
    "vhost.play": _names(
        "atc atc_auto gop_cache gop_cache_max_frames mix_correct mw_latency mw_msgs "
        "queue_length reduce_sequence_header send_min_interval time_jitter"
    ),
    "vhost.cluster": _names(
        "coworkers debug_srs_upnode follow_client mode origin origin_cluster protocol "
        "token_traverse vhost"
    ),
    "vhost.publish": _names(
        "firstpkt_timeout kickoff_for_idle mr mr_latency normal_timeout parse_sps "
        "try_annexb_first"
    ),
    "vhost.ingest": _names("enabled engine ffmpeg input"),
    "vhost.http_static": _names("dir enabled mount"),
    "vhost.http_remux": _names(
        "drop_if_not_match enabled fast_cache guess_has_av has_audio has_video mount"
    ),
    "vhost.dash": _names(
        "dash_cleanup dash_dispose dash_fragment dash_mpd_file dash_path dash_timeshift "
        "dash_update_period dash_window_size enabled"
    ),
    "vhost.hls": _names(
        "enabled hls_acodec hls_aof_ratio hls_cleanup hls_ctx hls_dispose hls_dts_directly "
        "hls_entry_prefix hls_fragment hls_fragments_per_key hls_key_file hls_key_file_path "
        "hls_key_url hls_keys hls_m3u8_file hls_mount hls_nb_notify hls_on_error hls_path "
        "hls_storage hls_td_ratio hls_ts_ctx hls_ts_file hls_ts_floor hls_vcodec "
        "hls_wait_keyframe hls_window"
    ),
    "vhost.http_hooks": _names(
        "enabled on_close on_connect on_dvr on_hls on_hls_notify on_play on_publish on_stop "
        "on_unpublish"
    ),
    "vhost.forward": _names("backend destination enabled"),
    "vhost.security": _names("allow deny enabled"),
    "vhost.transcode": _names("enabled engine ffmpeg"),
    "vhost.transcode.engine": _names(
        "abitrate achannels acodec aparams asample_rate enabled iformat oformat output "
        "perfile vbitrate vcodec vfilter vfps vheight vparams vpreset vprofile vthreads "
        "vwidth"
    ),
    "vhost.rtc": _names(
        "aac aac_bitrate bframe drop_for_pt dtls_role dtls_version enabled "
        "keep_avc_nalu_sei keep_bframe nack nack_no_copy opus_bitrate pli_for_rtmp "
        "rtc_to_rtmp rtmp_to_rtc stun_strict_check stun_timeout twcc"
    ),
    "vhost.srt": _names("enabled srt_to_rtmp"),
}

SRS6: Levels = {
    "": _names(
        "asprocess auto_reload_for_docker chunk_size circuit_breaker daemon "
        "disable_daemon_for_docker empty_ip_ok exporter ff_log_dir ff_log_level "
        "first_wait_for_qlv force_grace_quit grace_final_wait grace_start_wait heartbeat "
        "http_api http_server in_docker inotify_auto_reload is_full listen max_connections "
        "pid pithy_print_ms query_latest_version rtc_server server_id srs_log_file "
        "srs_log_level srs_log_level_v2 srs_log_tank srt_server stats stream_caster "
        "tcmalloc_release_rate tencentcloud_apm tencentcloud_cls threads utc_time vhost "
        "work_dir"
    ),
    "http_api": _names("auth crossdomain enabled https listen raw_api"),
    "http_api.raw_api": _names("allow_query allow_reload allow_update enabled"),
    "http_api.auth": _names("enabled password username"),
    "http_server": _names("crossdomain dir enabled https listen"),
    "srt_server": _names(
        "connect_timeout default_app enabled latency listen maxbw mix_correct mss "
        "passphrase payloadsize pbkeylen peer_idle_timeout peerlatency recvbuf recvlatency "
        "sei_filter sendbuf tlpktdrop tsbpdmode"
    ),
    "heartbeat": _names("device_id enabled interval summaries url"),
    "stats": _names("disk enabled network"),
    "rtc_server": _names(
        "api_as_candidates black_hole candidate dir ecdsa enabled encrypt ip_family "
        "keep_api_domain listen merge_nalus protocol resolve_api_domain reuseport tcp "
        "use_auto_detect_network_ip"
    ),
    "exporter": _names("enabled label listen tag"),
    "stream_caster": _names("caster enabled listen output sip"),
    "stream_caster.sip": _names("candidate enabled listen reinvite timeout"),
    "vhost": _names(
        "bandcheck chunk_size cluster dash dvr enabled exec forward hds hls http_hooks "
        "http_remux http_static in_ack_size ingest min_latency out_ack_size play publish "
        "refer rtc security srt tcp_nodelay transcode"
    ),
    "vhost.dvr": _names(
        "dvr_apply dvr_duration dvr_path dvr_plan dvr_wait_keyframe enabled time_jitter"
    ),
    "vhost.refer": _names("all enabled play publish"),
    "vhost.exec": _names("enabled publish"),
    "vhost.play": _names(
        "atc atc_auto gop_cache gop_cache_max_frames mix_correct mw_latency mw_msgs "
        "queue_length reduce_sequence_header send_min_interval time_jitter"
    ),
    "vhost.cluster": _names(
        "coworkers debug_srs_upnode follow_client mode origin origin_cluster protocol "
        "token_traverse vhost"
    ),
    "vhost.publish": _names(
        "firstpkt_timeout kickoff_for_idle mr mr_latency normal_timeout parse_sps "
        "try_annexb_first"
    ),
    "vhost.ingest": _names("enabled engine ffmpeg input"),
    "vhost.http_static": _names("dir enabled mount"),
    "vhost.http_remux": _names(
        "drop_if_not_match enabled fast_cache guess_has_av has_audio has_video mount"
    ),
    "vhost.dash": _names(
        "dash_cleanup dash_dispose dash_fragment dash_mpd_file dash_path dash_timeshift "
        "dash_update_period dash_window_size enabled"
    ),
    "vhost.hls": _names(
        "enabled hls_acodec hls_aof_ratio hls_cleanup hls_ctx hls_dispose hls_dts_directly "
        "hls_entry_prefix hls_fragment hls_fragments_per_key hls_key_file hls_key_file_path "
        "hls_key_url hls_keys hls_m3u8_file hls_mount hls_nb_notify hls_on_error hls_path "
        "hls_storage hls_td_ratio hls_ts_ctx hls_ts_file hls_ts_floor hls_vcodec "
        "hls_wait_keyframe hls_window"
    ),
    "vhost.http_hooks": _names(
        "enabled on_close on_connect on_dvr on_hls on_hls_notify on_play on_publish on_stop "
        "on_unpublish"
    ),
    "vhost.forward": _names("backend destination enabled"),
    "vhost.security": _names("allow deny enabled"),
    "vhost.transcode": _names("enabled engine ffmpeg"),
    "vhost.transcode.engine": _names(
        "abitrate achannels acodec aparams asample_rate enabled iformat oformat output "
        "perfile vbitrate vcodec vfilter vfps vheight vparams vpreset vprofile vthreads "
        "vwidth"
    ),
    "vhost.rtc": _names(
        "aac aac_bitrate bframe drop_for_pt dtls_role dtls_version enabled "
        "keep_avc_nalu_sei keep_bframe nack nack_no_copy opus_bitrate pli_for_rtmp "
        "rtc_to_rtmp rtmp_to_rtc stun_strict_check stun_timeout twcc"
    ),
    "vhost.srt": _names("enabled srt_to_rtmp"),
}

SRS7: Levels = {
    "": _names(
        "asprocess auto_reload_for_docker chunk_size circuit_breaker daemon "
        "disable_daemon_for_docker empty_ip_ok exporter ff_log_dir ff_log_level "
        "first_wait_for_qlv force_grace_quit grace_final_wait grace_start_wait heartbeat "
        "http_api http_server in_docker inotify_auto_reload is_full listen max_connections "
        "pid pithy_print_ms query_latest_version rtc_server server_id srs_log_file "
        "srs_log_level srs_log_level_v2 srs_log_tank srt_server stats stream_caster "
        "tcmalloc_release_rate tencentcloud_apm tencentcloud_cls threads utc_time vhost "
        "work_dir"
    ),
    "http_api": _names("auth crossdomain enabled https listen raw_api"),
    "http_api.raw_api": _names("allow_query allow_reload allow_update enabled"),
    "http_api.auth": _names("enabled password username"),
    "http_server": _names("crossdomain dir enabled https listen"),
    "srt_server": _names(
        "connect_timeout default_app enabled latency listen maxbw mix_correct mss "
        "passphrase payloadsize pbkeylen peer_idle_timeout peerlatency recvbuf recvlatency "
        "sei_filter sendbuf tlpktdrop tsbpdmode"
    ),
    "heartbeat": _names("device_id enabled interval ports summaries url"),
    "stats": _names("disk enabled network"),
    "rtc_server": _names(
        "api_as_candidates black_hole candidate dir ecdsa enabled encrypt ip_family "
        "keep_api_domain listen merge_nalus protocol resolve_api_domain reuseport tcp "
        "use_auto_detect_network_ip"
    ),
    "exporter": _names("enabled label listen tag"),
    "stream_caster": _names("caster enabled listen output sip"),
    "stream_caster.sip": _names("candidate enabled listen reinvite timeout"),
    "vhost": _names(
        "bandcheck chunk_size cluster dash dvr enabled exec forward hds hls http_hooks "
        "http_remux http_static in_ack_size ingest min_latency out_ack_size play publish "
        "refer rtc security srt tcp_nodelay transcode"
    ),
    "vhost.dvr": _names(
        "dvr_apply dvr_duration dvr_path dvr_plan dvr_wait_keyframe enabled time_jitter"
    ),
    "vhost.refer": _names("all enabled play publish"),
    "vhost.exec": _names("enabled publish"),
    "vhost.play": _names(
        "atc atc_auto gop_cache gop_cache_max_frames mix_correct mw_latency mw_msgs "
        "queue_length reduce_sequence_header send_min_interval time_jitter"
    ),
    "vhost.cluster": _names(
        "coworkers debug_srs_upnode follow_client mode origin origin_cluster protocol "
        "token_traverse vhost"
    ),
    "vhost.publish": _names(
        "firstpkt_timeout kickoff_for_idle mr mr_latency normal_timeout parse_sps "
        "try_annexb_first"
    ),
    "vhost.ingest": _names("enabled engine ffmpeg input"),
    "vhost.http_static": _names("dir enabled mount"),
    "vhost.http_remux": _names(
        "drop_if_not_match enabled fast_cache guess_has_av has_audio has_video mount"
    ),
    "vhost.dash": _names(
        "dash_cleanup dash_dispose dash_fragment dash_mpd_file dash_path dash_timeshift "
        "dash_update_period dash_window_size enabled"
    ),
    "vhost.hls": _names(
        "enabled hls_acodec hls_aof_ratio hls_cleanup hls_ctx hls_dispose hls_dts_directly "
        "hls_entry_prefix hls_fragment hls_fragments_per_key hls_key_file hls_key_file_path "
        "hls_key_url hls_keys hls_m3u8_file hls_mount hls_nb_notify hls_on_error hls_path "
        "hls_storage hls_td_ratio hls_ts_ctx hls_ts_file hls_ts_floor hls_vcodec "
        "hls_wait_keyframe hls_window"
    ),
    "vhost.http_hooks": _names(
        "enabled on_close on_connect on_dvr on_hls on_hls_notify on_play on_publish on_stop "
        "on_unpublish"
    ),
    "vhost.forward": _names("backend destination enabled"),
    "vhost.security": _names("allow deny enabled"),
    "vhost.transcode": _names("enabled engine ffmpeg"),
    "vhost.transcode.engine": _names(
        "abitrate achannels acodec aparams asample_rate enabled iformat oformat output "
        "perfile vbitrate vcodec vfilter vfps vheight vparams vpreset vprofile vthreads "
        "vwidth"
    ),
    "vhost.rtc": _names(
        "aac aac_bitrate bframe drop_for_pt dtls_role dtls_version enabled "
        "keep_avc_nalu_sei keep_bframe nack nack_no_copy opus_bitrate pli_for_rtmp "
        "rtc_to_rtmp rtmp_to_rtc stun_strict_check stun_timeout twcc"
    ),
    "vhost.srt": _names("enabled srt_to_rtmp"),
}

BY_VERSION: Final[Mapping[int, Levels]] = {4: SRS4, 5: SRS5, 6: SRS6, 7: SRS7}

# What the checker follows.
CHECKED_VERSION: Final = 6
CHECKED: Final[Levels] = SRS6

# SRS 6 renames these root blocks before checking.
LEGACY_ROOT_RENAMES: Final[Mapping[str, str]] = {"http_stream": "http_server"}

# SRS 6 moves these vhost-level directives into a block before checking
# (`time_jitter on;` becomes `play { time_jitter on; }`, `mode remote;` becomes
# `cluster { mode remote; }`, ...).
LEGACY_VHOST_TO_PLAY: Final = _names(
    "time_jitter mix_correct atc atc_auto mw_latency gop_cache gop_cache_max_frames "
    "queue_length send_min_interval reduce_sequence_header"
)
LEGACY_VHOST_TO_CLUSTER: Final = _names("mode origin token_traverse vhost debug_srs_upnode")
# `refer` without a block, `refer_play`, `refer_publish` -> `refer { all|play|publish }`.
LEGACY_VHOST_REFER: Final[Mapping[str, str]] = {
    "refer": "all",
    "refer_play": "play",
    "refer_publish": "publish",
}
# `mr { enabled; latency; }`, `publish_1stpkt_timeout`, `publish_normal_timeout` -> `publish`.
LEGACY_VHOST_PUBLISH: Final[Mapping[str, str]] = {
    "publish_1stpkt_timeout": "firstpkt_timeout",
    "publish_normal_timeout": "normal_timeout",
}
LEGACY_VHOST_MR: Final[Mapping[str, str]] = {"enabled": "mr", "latency": "mr_latency"}
# `nack { enabled; no_copy; }` and `twcc { enabled; }` -> `rtc { nack; nack_no_copy; twcc; }`.
LEGACY_VHOST_RTC: Final[Mapping[str, Mapping[str, str]]] = {
    "nack": {"enabled": "nack", "no_copy": "nack_no_copy"},
    "twcc": {"enabled": "twcc"},
}
LEGACY_VHOST_RENAMES: Final[Mapping[str, str]] = {"http": "http_static"}
# Children SRS 6 drops silently before checking.
LEGACY_DROPPED: Final[Mapping[str, frozenset[str]]] = {
    "rtc_server": _names("perf_stat queue_length"),
    "vhost.http_remux": _names("hstrs"),
    "stream_caster": _names(
        "tcp_enable rtp_port_min rtp_port_max wait_keyframe rtp_idle_timeout audio_enable "
        "auto_create_channel"
    ),
    "stream_caster.sip": _names(
        "serial realm ack_timeout keepalive_timeout invite_port_fixed query_catalog_interval "
        "auto_play"
    ),
}
# Children SRS 6 renames before checking (`srt_server { tlpkdrop; }` is SRS 4's spelling).
LEGACY_CHILD_RENAMES: Final[Mapping[str, Mapping[str, str]]] = {
    "srt_server": {"tlpkdrop": "tlpktdrop"},
}


def versions_accepting(level: str, name: str) -> list[int]:
    """The SRS major versions whose checker takes `name` inside `level`."""
    return [
        version
        for version, levels in BY_VERSION.items()
        if level in levels and name in levels[level]
    ]
