"""A WSGI app built by a PasteDeploy factory (gunicorn's --paste): it answers with what its
configuration file and --paste-global gave it."""


def make_app(global_conf, greeting="hello", **local_conf):
    def application(environ, start_response):
        body = ("%s from %s, region %s" % (greeting, local_conf.get("name", "?"), global_conf.get("region", "?"))).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return application
