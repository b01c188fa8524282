# Deliberately wrong: every line breaks a rule of the seed. bad.expected.json lists what the linter says.
FROM centos:latest
ADD . /opt/app
RUN yum install -y java-17-openjdk
RUN yum update -y
RUN cd /opt/app && ./gradlew build > /opt/app/build.log
ENV DB_PASSWORD=changeme
EXPOSE 8080:8899
WORKDIR opt/app
USER root
CMD java -jar /opt/app/build/libs/app.jar
