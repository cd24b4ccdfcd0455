/* version: the one version string of wtrelayd, wtclient and wtbench. */
#ifndef WTRELAYD_VERSION_H
#define WTRELAYD_VERSION_H

#define WTRELAYD_VERSION "0.1.0"

#endif
