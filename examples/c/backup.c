/* backup: open a backup subflow (the draft's prio = 1), take the primary path down by
 * closing its subflow, and show the backup carrying the rest of the data. Exits non-zero
 * on any failure.
 *
 * usage: backup [CONFIG [SERVER1 [LOCAL2 [SERVER2 [PORT [BYTES]]]]]] */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

int main(int argc, char **argv)
{
    struct args a;
    struct xfer x = {0, 0, 0, 0};
    struct mptcp_sub_ids *ids;
    struct mptun_tcp_info before, after;
    int fd, id, primary = -1, i, b = -1, flags;

    parse_args(argc, argv, &a, "tun0=198.18.1.2,tun1=198.18.2.2");
    if (mptun_init(a.config) < 0)
        die("mptun_init");
    fd = connect_mptcp(&a);
    id = open_established(fd, a.local2, a.server2, a.port, 1);

    flags = sub_flags(fd, id);
    if (!(flags & MPTCP_SUB_LOW_PRIO))
        fail("the backup subflow is not listed as low_prio");
    if (sub_get_int(fd, id, SOL_MPTCP, MPTUN_SUB_BACKUP, &b) < 0 || b != 1)
        fail("MPTUN_SUB_BACKUP does not read back as 1");

    ids = get_sub_ids(fd);
    print_sub_ids(ids);
    for (i = 0; i < ids->sub_count; i++)
        if (!(ids->sub_status[i].flags & MPTCP_SUB_SLAVE_SK))
            primary = ids->sub_status[i].id;
    free(ids);
    if (primary < 0)
        fail("no initial subflow listed");

    /* first half while the primary is up */
    pump(fd, &x, a.bytes / 2, a.bytes, 0);
    if (sub_tcp_info(fd, id, &before) < 0)
        die("MPTUN_TCP_INFO of the backup");
    printf("backup before: data_sent=%llu data_received=%llu\n",
           (unsigned long long)before.tcpi_data_sent,
           (unsigned long long)before.tcpi_data_received);

    /* the primary goes away */
    if (close_subflow(fd, primary, SHUT_RDWR) < 0)
        die("MPTCP_CLOSE_SUB_ID of the primary");
    printf("closed primary id=%d\n", primary);

    pump(fd, &x, a.bytes, a.bytes, 1);
    /* what was queued is sent over the backup: wait (at most 10 s) until it has been */
    for (i = 0; i < 1000; i++) {
        if (sub_tcp_info(fd, id, &after) < 0)
            die("MPTUN_TCP_INFO of the backup");
        if (after.tcpi_data_sent - before.tcpi_data_sent >= a.bytes - a.bytes / 2)
            break;
        sleep_ms(10);
    }
    printf("backup after: data_sent=%llu data_received=%llu\n",
           (unsigned long long)after.tcpi_data_sent,
           (unsigned long long)after.tcpi_data_received);
    check_received(&x, a.bytes);
    if (after.tcpi_data_sent - before.tcpi_data_sent < a.bytes - a.bytes / 2)
        fail("the backup subflow did not carry the data sent after the primary closed");
    return close_and_finish(fd);
}
